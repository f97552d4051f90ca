import { deadLetterQueue } from "./dead-letters";
import { type FunctionContext, serviceFunction } from "./functions";
import type { DeploymentPlan, ServiceDeployment } from "./plan";
import { retries } from "./sizing";

/**
 * One EventBridge Scheduler schedule and one function per declared cron (outbox sweepers, due
 * payments, ...). Scheduler retries delivery, Lambda retries a failed run twice, and what still
 * fails lands in the cron's dead-letter queue.
 */
export function scheduleServices(plan: DeploymentPlan, deployments: ServiceDeployment[], context: FunctionContext, enabled: boolean) {
  return plan.crons.map((planned) => {
    const deployment = deployments.find((d) => d.manifest.name === planned.service)!;
    const { queue: dlq, alarm } = deadLetterQueue(planned, context.alarms);
    const fn = serviceFunction(planned, deployment, context, { deadLetterQueue: dlq });
    // Component names are unique across the app: the schedule is named after its function.
    const cron = new sst.aws.CronV2(`${planned.resource}Schedule`, {
      function: fn.arn,
      schedule: planned.schedule,
      retries: retries.cronDeliveryAttempts,
      dlq: dlq.arn,
      enabled,
    });
    return { planned, fn, dlq, alarm, cron };
  });
}
