/**
 * The stage's event bus. Services publish with the EventBridge SDK (PutEvents, `source`
 * `<app>.<service>`); every manifest subscription becomes a rule on this bus (subscribers.ts).
 */
export function createBus() {
  return new sst.aws.Bus("Bus");
}
