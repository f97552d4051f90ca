import { statSync } from "node:fs";
import type { StageModel } from "./capture/model";

/**
 * `npm run stage:plan`: what `sst deploy` would create for a stage, read from the capture of
 * the real program. Variable values are never printed (several are secrets); names are.
 */
export function formatPlan(model: StageModel): string {
  const lines: string[] = [];
  const { app } = model;
  const byName = new Map(model.functions.map((f) => [f.name, f]));
  const label = (functionName: string) => byName.get(functionName)?.component ?? functionName;
  const kb = (file: string) => {
    try {
      return `${Math.round(statSync(file).size / 1024)} KB package`;
    } catch {
      return "package missing";
    }
  };
  lines.push(`stage ${app.stage} of ${app.name} (${app.region}): ${model.resourceCount} resources, ${model.errors.length} program errors`);
  lines.push(`  removal ${app.removal}${app.protect ? ", protected" : ""}`);
  for (const error of model.errors) lines.push(`  PROGRAM ERROR ${error}`);

  lines.push("", "Neon");
  lines.push(`  project ${model.neon.projectId ?? "(none)"}`);
  lines.push(
    model.neon.branch
      ? `  branch ${model.neon.branch.name} from ${model.neon.branch.parentId}, endpoint ${model.neon.endpoint?.host} (${model.neon.endpoint?.minCu}-${model.neon.endpoint?.maxCu} CU, suspends after ${model.neon.endpoint?.suspendSeconds} s)`
      : "  the project's default branch (no branch created)",
  );

  lines.push("", "Deploy-time invocations");
  for (const invocation of model.invocations) {
    const fn = byName.get(invocation.functionName);
    const env = fn?.environment ?? {};
    lines.push(
      `  ${invocation.name}: ${label(invocation.functionName)} with ${invocation.input}, on every deploy (trigger ${Object.keys(invocation.triggers).join(", ")})`,
    );
    if (env.MIGRATE_TOPOLOGY) {
      lines.push(
        `    topology ${env.MIGRATE_TOPOLOGY}${env.MIGRATE_DATABASE ? ` (database ${env.MIGRATE_DATABASE})` : ""}, services ${env.MIGRATE_SERVICES}, seeds ${env.MIGRATE_SEEDS || "none"}`,
      );
    }
  }

  lines.push("", `Functions (${model.functions.length})`);
  for (const fn of model.functions) {
    lines.push(
      `  ${fn.component.padEnd(30)} ${fn.handler.padEnd(26)} ${fn.runtime} ${fn.architecture} ${fn.memoryMb} MB ${fn.timeoutSeconds} s, ${kb(fn.codeZip)}` +
        (fn.asyncInvoke
          ? `, async retries ${fn.asyncInvoke.maximumRetryAttempts}${fn.asyncInvoke.onFailureDestination ? ` then ${fn.asyncInvoke.onFailureDestination.split(":").pop()}` : ""}`
          : ""),
    );
    lines.push(`    env ${Object.keys(fn.environment).sort().join(", ")}`);
    if (fn.sealed.length > 0) lines.push(`    sealed in its package ${fn.sealed.join(", ")}`);
  }

  lines.push("", `API routes (${model.routes.length})`);
  for (const route of model.routes) lines.push(`  ${route.routeKey.padEnd(28)} → ${label(route.functionName)} (payload ${route.payloadFormatVersion})`);

  lines.push("", `Bus ${model.bus.name}: rules (${model.rules.length})`);
  for (const rule of model.rules) {
    for (const target of rule.targets) {
      const retry = target.retryPolicy
        ? `delivery retries ${target.retryPolicy.maximumRetryAttempts} within ${target.retryPolicy.maximumEventAgeInSeconds} s`
        : "default delivery retries";
      lines.push(`  ${rule.eventPattern} → ${label(target.functionName)} (${retry}, dead letters ${target.deadLetterArn?.split(":").pop() ?? "none"})`);
    }
  }

  lines.push("", `Schedules (${model.schedules.length})`);
  for (const schedule of model.schedules) {
    lines.push(
      `  ${schedule.expression.padEnd(20)} → ${label(schedule.functionName)} ${schedule.enabled ? "" : "(disabled) "}(dead letters ${schedule.deadLetterArn?.split(":").pop() ?? "none"})`,
    );
  }

  lines.push("", `Queues (${model.queues.length})`);
  for (const queue of model.queues) lines.push(`  ${queue.name}${queue.retentionSeconds ? ` keeps messages ${queue.retentionSeconds / 86_400} days` : ""}`);

  lines.push("", `Alarms (${model.alarms.length})`);
  const topicName = (arn: string) => model.topics.find((t) => t.arn === arn)?.name ?? arn;
  for (const alarm of model.alarms) {
    const subject = Object.values(alarm.dimensions).join(", ");
    const operator = alarm.comparisonOperator === "GreaterThanThreshold" ? ">" : alarm.comparisonOperator;
    lines.push(
      `  ${alarm.metricName} ${operator} ${alarm.threshold} on ${subject} (${alarm.evaluationPeriods} × ${alarm.periodSeconds} s) → ${alarm.alarmActions.map(topicName).join(", ") || "no action"}`,
    );
  }

  lines.push("", "Outputs");
  for (const [key, value] of Object.entries(model.outputs)) if (!key.startsWith("_")) lines.push(`  ${key}: ${JSON.stringify(value)}`);
  return `${lines.join("\n")}\n`;
}
