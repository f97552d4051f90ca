import type { Seeds } from "@enclave/core";
import { developmentPeople, type SeedPerson, stagingPeople } from "@enclave/core/seed";
import type { ProfileContext } from "./context";
import { ensureProfile, type ProfilePatch, updateOwnProfile } from "./profile";

type Details = { person: SeedPerson; details: ProfilePatch };

export const developmentProfiles: Details[] = [
  {
    person: developmentPeople.ada,
    details: {
      phone: "+442079460001",
      address: { line1: "12 St James's Square", city: "London", postalCode: "SW1Y 4JH", country: "GB" },
      bio: "Writes programs for engines that do not exist yet.",
      preferences: { theme: "dark", language: "en" },
    },
  },
  {
    person: developmentPeople.grace,
    details: {
      phone: "+12025550142",
      address: { city: "Arlington", region: "VA", country: "US" },
      bio: "Pays the bakery every Friday.",
      preferences: { theme: "light", language: "en" },
    },
  },
  {
    person: developmentPeople.shop,
    details: {
      avatarUrl: "https://cdn.enclave.dev/demo/corner-bakery.png",
      phone: "+4930901820",
      address: { line1: "Oranienstraße 25", city: "Berlin", postalCode: "10999", country: "DE" },
      bio: "Sourdough since 1998.",
      preferences: { language: "de" },
    },
  },
];

export const stagingProfiles: Details[] = [
  { person: stagingPeople.support, details: { bio: "Staging support account.", preferences: { language: "en" } } },
  { person: stagingPeople.maria, details: { phone: "+351912345678", address: { city: "Lisbon", country: "PT" }, preferences: { language: "pt" } } },
  { person: stagingPeople.tom, details: { address: { city: "Hamburg", postalCode: "20095", country: "DE" }, preferences: { language: "de" } } },
  {
    person: stagingPeople.market,
    details: { phone: "+4940822190", address: { line1: "Große Elbstraße 9", city: "Hamburg", postalCode: "22767", country: "DE" }, bio: "Fresh fish daily." },
  },
];

/**
 * Each person's profile with its details, through the domain verbs, so profile.created and
 * profile.updated go out as for any user. user.registered (from auth's seed) may create the
 * profile first or later; either way it ends up with the details. A profile that has any detail
 * already (edited by its user, or seeded before) is left alone, so running the set again changes
 * nothing.
 */
async function seedProfiles(ctx: ProfileContext, profiles: Details[], correlationId: string): Promise<void> {
  const db = (await ctx.database()).db;
  for (const { person, details } of profiles) {
    const metadata = { correlationId, actor: null };
    const { row, created } = await ensureProfile(db, ctx.events, person.id, metadata);
    if (created) await ctx.events.publish(db, [created]);
    const blank =
      !row || (row.avatarUrl === null && row.phone === null && row.address === null && row.bio === null && Object.keys(row.preferences ?? {}).length === 0);
    if (blank) await updateOwnProfile(ctx, person.id, details, metadata);
  }
}

export const profileSeeds: Seeds<ProfileContext> = {
  development: (ctx) => seedProfiles(ctx, developmentProfiles, "seed:development"),
  staging: (ctx) => seedProfiles(ctx, stagingProfiles, "seed:staging"),
};
