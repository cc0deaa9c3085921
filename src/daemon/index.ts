export { Daemon, type DaemonOptions } from "./daemon.js";
export { WorkerNode } from "./worker-node.js";
export { CommandBatcher } from "./command-batcher.js";
export { OutboxRelay } from "./outbox-relay.js";
export { Reconciler, isLost } from "./reconciler.js";
export { connectOptions, embeddedRuntimeFile, locateNats } from "./nats-setup.js";
export { runUntilSignalled } from "./signals.js";
export { createNotifier, queueStatusText, type Notifier } from "./systemd-notify.js";
