/**
 * HTTP client of the Neurectomy service for the extension: `POST /v1/generate` with `"stream": true`,
 * read as Server-Sent Events (`token` events, then one `done` or `error` event), and `GET /v1/models`.
 * An API key, when given, is sent as `Authorization: Bearer <key>`.
 *
 * No `vscode` import here, so that it runs (and is tested) under plain Node.
 */

/** One message of a conversation. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Body of `POST /v1/generate` (the subset the extension uses). */
export interface GenerateRequest {
  prompt?: string;
  messages?: ChatMessage[];
  /** Upper bound on completion tokens. */
  max_tokens?: number;
  /** Sampling temperature; 0 is greedy. */
  temperature?: number;
  /** Deadline of the request, seconds. */
  timeout_s?: number;
  /** A served model's id (`GET /v1/models`); absent: the service's default model. */
  model?: string;
}

/** One entry of `GET /v1/models` (the fields the extension uses; the service sends more). */
export interface ModelInfo {
  id: string;
  /** `generation` (a chat/completion model) or `embedding`. */
  kind: string;
  /** `loaded`, `loading`, `unloaded` or `failed`. */
  status: string;
  /** Requests that name no model get this one. */
  default: boolean;
}

/** Exact token counts, from the model's own tokenizer. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  total_tokens: number;
}

/** Data of the final `done` event (the body of a non-streamed generation). */
export interface GenerateResponse {
  id: string;
  model: string;
  text: string;
  finish_reason: "stop" | "length" | "cancelled";
  usage: Usage;
  timings: { queue_s: number; ttft_s: number; decode_s: number; decode_tokens_per_s: number | null };
}

/** An error answered by the service (HTTP status, or an `error` event in the stream). */
export class NeurectomyError extends Error {
  constructor(
    message: string,
    /** `bad_request`, `busy`, `no_responders`, `timeout`, ... (`http` when the body was not ours). */
    readonly code: string,
    /** The request field at fault, for `bad_request`. */
    readonly field: string | null = null,
    /** HTTP status, when the service refused the request before streaming. */
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = "NeurectomyError";
  }
}

/** Options of {@link streamGenerate}. */
export interface StreamOptions {
  /** Called with each piece of streamed text, in order. */
  onToken: (text: string) => void;
  /** Aborting it closes the connection, which cancels the generation on the service. */
  signal?: AbortSignal;
  /** API key (when the service has auth on). */
  apiKey?: string;
}

function headers(apiKey: string | undefined, extra: Record<string, string>): Record<string, string> {
  return apiKey ? { ...extra, authorization: `Bearer ${apiKey}` } : extra;
}

async function refusal(response: Response): Promise<NeurectomyError> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: reported with the status below
  }
  return errorOf(body, `HTTP ${response.status}: ${text.slice(0, 200)}`, response.status);
}

/**
 * The served models (`GET /v1/models`), generation models first as the service orders them.
 *
 * @throws NeurectomyError - The service refused the request (e.g. 401 without a valid API key).
 */
export async function listModels(baseUrl: string, apiKey?: string, signal?: AbortSignal): Promise<ModelInfo[]> {
  const response = await fetch(endpoint(baseUrl, "/v1/models"), {
    headers: headers(apiKey, { accept: "application/json" }),
    signal,
  });
  if (!response.ok) throw await refusal(response);
  const body = (await response.json()) as { data: ModelInfo[] };
  return body.data.map((m) => ({ id: m.id, kind: m.kind, status: m.status, default: m.default }));
}

/** One Server-Sent Event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Splits a text stream into Server-Sent Events. Feed it chunks as they arrive (they may cut events,
 * lines and even CRLF pairs anywhere); it returns the events completed so far.
 */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];

  /** The events completed by `chunk`. */
  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A trailing "\r" may be the first half of "\r\n": wait for the next chunk.
      if (match === null || (match[0] === "\r" && match.index === this.buffer.length - 1)) {
        return out;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      if (line === "") {
        if (this.data.length > 0) {
          out.push({ event: this.event || "message", data: this.data.join("\n") });
        }
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // comment (keep-alive)
      const colon = line.indexOf(":");
      const name = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "event") this.event = value;
      else if (name === "data") this.data.push(value);
    }
  }
}

function errorOf(body: unknown, fallback: string, status: number | null): NeurectomyError {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  if (error && typeof error.code === "string" && typeof error.message === "string") {
    const field = typeof error.field === "string" ? error.field : null;
    return new NeurectomyError(error.message, error.code, field, status);
  }
  return new NeurectomyError(fallback, "http", null, status);
}

/** `baseUrl` joined with `path`, whether or not `baseUrl` ends with a slash. */
export function endpoint(baseUrl: string, path: string): string {
  return baseUrl.replace(/\/+$/, "") + path;
}

/**
 * Streams a generation: calls `onToken` for each piece of text and resolves with the final result.
 *
 * @param baseUrl - Base URL of the service, e.g. `http://127.0.0.1:8420`.
 * @param request - Prompt or messages, and sampling.
 * @throws NeurectomyError - The service refused the request or reported an error mid-stream.
 * @throws Error - The connection failed, or `options.signal` was aborted (an `AbortError`).
 */
export async function streamGenerate(
  baseUrl: string,
  request: GenerateRequest,
  options: StreamOptions,
): Promise<GenerateResponse> {
  const response = await fetch(endpoint(baseUrl, "/v1/generate"), {
    method: "POST",
    headers: headers(options.apiKey, { "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify({ ...request, stream: true }),
    signal: options.signal,
  });
  if (!response.ok) throw await refusal(response);
  if (response.body === null) throw new NeurectomyError("the response has no body", "http");
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const events = parser.feed(done ? decoder.decode() + "\n\n" : decoder.decode(value, { stream: true }));
      for (const event of events) {
        if (event.event === "token") {
          options.onToken((JSON.parse(event.data) as { text: string }).text);
        } else if (event.event === "done") {
          return JSON.parse(event.data) as GenerateResponse;
        } else if (event.event === "error") {
          throw errorOf(JSON.parse(event.data), event.data, null);
        }
      }
      if (done) throw new NeurectomyError("the stream ended without a done event", "stream_broken");
    }
  } finally {
    await reader.cancel().catch(() => undefined); // closes the connection if we leave early
  }
}
