/** Cloud resources, one concern per file; filled in as the cloud stage lands. */
export async function deploy() {
  return {};
}
