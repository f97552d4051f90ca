import { deadLetterTags } from "./dead-letter-tags";
import type { PlannedFunction } from "./plan";
import { deadLetterRetentionSeconds } from "./sizing";

/**
 * Dead-letter queues and their alarms. Every subscriber and every cron has its own queue (a
 * poisoned event is redriven to the one consumer that failed), and every queue has its alarm:
 * anything in a dead-letter queue is work that did not happen, so one message is enough to
 * notify. Alarms go to one SNS topic per stage (docs/DEPLOY.md, "Dead letters": subscribing and
 * what to do).
 */

/** The stage's alarm topic: every dead-letter alarm notifies it when it fires and when it clears. */
export function createAlarmTopic() {
  return new sst.aws.SnsTopic("Alarms");
}

/**
 * The dead-letter queue of one subscriber or cron function, keeping messages 14 days, and its
 * alarm on ApproximateNumberOfMessagesVisible > 0. SQS publishes that metric once a minute, so
 * the alarm fires within about two minutes of the first dead letter; an idle queue reports no
 * data, which counts as empty.
 */
export function deadLetterQueue(planned: PlannedFunction, alarms: sst.aws.SnsTopic) {
  const queue = new sst.aws.Queue(`${planned.resource}Dlq`, {
    transform: {
      queue: (args) => {
        args.messageRetentionSeconds = deadLetterRetentionSeconds;
        args.tags = {
          ...((args.tags as Record<string, string> | undefined) ?? {}),
          [deadLetterTags.stage]: $app.stage,
          [deadLetterTags.job]: `${planned.service}/${planned.name}`,
          [deadLetterTags.kind]: planned.kind,
        };
      },
    },
  });
  const alarm = new aws.cloudwatch.MetricAlarm(`${planned.resource}DlqAlarm`, {
    alarmDescription: `${planned.service} ${planned.kind} ${planned.name}: dead letters waiting in its queue (npm run events:dlq -- --stage ${$app.stage})`,
    namespace: "AWS/SQS",
    metricName: "ApproximateNumberOfMessagesVisible",
    dimensions: { QueueName: queue.nodes.queue.name },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 1,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    alarmActions: [alarms.arn],
    okActions: [alarms.arn],
  });
  return { queue, alarm };
}
