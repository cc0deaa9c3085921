export * from "./lanes.js";
export * from "./events.js";
export * from "./commands.js";
export * from "./errors.js";
export * from "./video.js";
