export async function runTwinCli(_options: { stage: string; topology: string; port: number | undefined; cron: string | undefined }): Promise<void> {
  throw new Error("stage:twin is not available in this build");
}
