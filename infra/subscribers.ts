import { deadLetterQueue } from "./dead-letters";
import { type FunctionContext, serviceFunction } from "./functions";
import type { DeploymentPlan, ServiceDeployment } from "./plan";
import { retries } from "./sizing";

/**
 * One EventBridge rule and one function per declared subscription, with its pattern
 * as the rule's event pattern (the same pattern the local bus matches). Each subscription has
 * its own dead-letter queue, so a poisoned event is redriven to the one consumer that failed.
 */
export function subscribeServices(bus: sst.aws.Bus, plan: DeploymentPlan, deployments: ServiceDeployment[], context: FunctionContext) {
  return plan.subscriptions.map((planned) => {
    const deployment = deployments.find((d) => d.manifest.name === planned.service)!;
    const { queue: dlq, alarm } = deadLetterQueue(planned, context.alarms);
    const fn = serviceFunction(planned, deployment, context, { deadLetterQueue: dlq });
    const subscriber = bus.subscribe(planned.resource, fn.arn, {
      transform: {
        rule: (args) => {
          args.description = `${planned.service}: ${planned.name}`;
          args.eventPattern = planned.eventPattern;
        },
        target: (args) => {
          args.retryPolicy = { maximumRetryAttempts: retries.deliveryAttempts, maximumEventAgeInSeconds: retries.deliveryMaxEventAgeSeconds };
          args.deadLetterConfig = { arn: dlq.arn };
        },
      },
    });
    // Only the rule is read: lifting `subscriber.nodes` would walk every node, and the function
    // node of a subscriber given an ARN throws when read.
    const ruleArn = subscriber.apply((s) => s.nodes.rule.arn);
    // EventBridge itself writes to the queue when it cannot deliver: allow this rule only.
    new aws.sqs.QueuePolicy(`${planned.resource}DlqPolicy`, {
      queueUrl: dlq.url,
      policy: $jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "events.amazonaws.com" },
            Action: "sqs:SendMessage",
            Resource: dlq.arn,
            Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
          },
        ],
      }),
    });
    return { planned, fn, dlq, alarm, subscriber };
  });
}
