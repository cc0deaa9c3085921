/**
 * The part of vqd's config the built-in steps read. A whole `Config` fits; so does any subset,
 * the rest taking the built-in defaults.
 */
import { BUILTIN_PROFILES, type TranscodeConfig, type TranscodeProfile, type WebhookConfig } from "../config/schema.js";

export interface StepsConfig {
  readonly transcode?: Partial<TranscodeConfig>;
  readonly webhooks?: Readonly<Record<string, WebhookConfig>>;
}

export interface MediaSettings {
  readonly ffmpeg: string;
  readonly ffprobe: string;
  readonly stallTimeoutMs: number;
  readonly profiles: Readonly<Record<string, TranscodeProfile>>;
}

export function mediaSettings(config: StepsConfig = {}): MediaSettings {
  const t = config.transcode ?? {};
  return {
    ffmpeg: t.ffmpeg ?? "ffmpeg",
    ffprobe: t.ffprobe ?? "ffprobe",
    stallTimeoutMs: t.stallTimeoutMs ?? 60_000,
    profiles: t.profiles ?? BUILTIN_PROFILES,
  };
}
