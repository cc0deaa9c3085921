import { loadConfig, type Config } from "../config/index.js";
import { openDatabase, VideoStore } from "../store/index.js";

export interface GlobalOptions {
  readonly config?: string;
}

/** What a command needs from its surroundings; built lazily so `--help` costs nothing. */
export class CliContext {
  readonly #options: GlobalOptions;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  #config?: Config;

  constructor(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()) {
    this.#options = options;
    this.env = env;
    this.cwd = cwd;
  }

  get config(): Config {
    this.#config ??= loadConfig({ file: this.#options.config, env: this.env, cwd: this.cwd });
    return this.#config;
  }

  /** Opens the store for the length of fn and always closes it. */
  async withStore<T>(fn: (store: VideoStore) => Promise<T> | T): Promise<T> {
    const { database } = this.config;
    const db = await openDatabase({ file: database.file, synchronous: database.synchronous, busyTimeoutMs: database.busyTimeoutMs });
    try {
      return await fn(new VideoStore(db));
    } finally {
      await db.close();
    }
  }
}
