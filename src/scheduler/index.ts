/** Periodic jobs (profiling suites, memory snapshots) on node-cron. */
export {
  Scheduler,
  SCHEDULE_JOBS,
  profileCompletedPayload,
  type ResultHook,
  type ScheduleJob,
  type ScheduledRun,
  type ScheduledTaskFn,
  type SchedulerOptions,
  type TaskContext,
} from "./scheduler.js";
