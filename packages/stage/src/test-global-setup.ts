import { ensurePlatform } from "../../../infra/platform";

/** The stage tests run the real SST program: install its platform once, before any test file starts. */
export default function setup() {
  ensurePlatform();
}
