/**
 * Tests of the HTTP client against a tiny local server that speaks the service's SSE format
 * (as Litestar writes it: CRLF line ends, `event:` then `data:` lines). Loopback only.
 */

import * as assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { listModels, NeurectomyError, SseParser, streamGenerate } from "../client";

const KEY = "nk_test_key";
const MODELS = {
  object: "list",
  data: [
    { id: "gemma-3-270m-q4_k_m", object: "model", kind: "generation", status: "loaded", default: true, n_ctx: 4096 },
    { id: "all-MiniLM-L6-v2", object: "model", kind: "embedding", status: "loaded", default: false, n_ctx: null },
  ],
};
const authorizations: (string | undefined)[] = [];

const DONE = {
  id: "req-1",
  model: "gemma-3-270m-q4_k_m",
  text: "Hello, world",
  finish_reason: "length",
  usage: { prompt_tokens: 9, completion_tokens: 3, cached_tokens: 0, total_tokens: 12 },
  timings: { queue_s: 0.001, ttft_s: 0.05, decode_s: 0.1, decode_tokens_per_s: 30 },
};

function sse(event: string, data: unknown): string {
  return `event: ${event}\r\ndata: ${JSON.stringify(data)}\r\n\r\n`;
}

let server: http.Server;
let baseUrl: string;
const bodies: unknown[] = [];
let closedMidStream: Promise<void>;
let markClosed: () => void;

before(async () => {
  closedMidStream = new Promise((resolve) => (markClosed = resolve));
  server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString()));
    req.on("end", () => {
      authorizations.push(req.headers.authorization);
      if (req.url === "/v1/models" && req.method === "GET") {
        const ok = req.headers.authorization === `Bearer ${KEY}`;
        res.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
        const refused = { error: { code: "unauthorized", message: "missing or invalid API key", field: null } };
        res.end(JSON.stringify(ok ? MODELS : refused));
        return;
      }
      const body = JSON.parse(raw) as { prompt?: string };
      bodies.push(body);
      if (req.url !== "/v1/generate" || req.method !== "POST") {
        res.writeHead(404).end();
      } else if (body.prompt === "bad") {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "bad_request", message: "too long", field: "max_tokens" } }));
      } else if (body.prompt === "endless") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(sse("token", { text: "tick" }));
        const timer = setInterval(() => res.write(sse("token", { text: "tick" })), 20);
        res.on("close", () => {
          clearInterval(timer);
          markClosed();
        });
      } else if (body.prompt === "fails") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(sse("token", { text: "Hel" }));
        res.end(sse("error", { error: { code: "timeout", message: "deadline passed", field: null } }));
      } else {
        res.writeHead(200, { "content-type": "text/event-stream" });
        // Cut the stream at awkward places: inside a CRLF pair, a JSON string and a multi-byte character.
        const whole = Buffer.from(
          sse("token", { text: "Hello" }) + sse("token", { text: ", wörld" }) + sse("done", DONE),
        );
        const cuts = [5, 13, 20, 41, 73, 90, whole.length]; // 13: after "\r"; 73: inside "ö"
        let at = 0;
        const next = (): void => {
          const cut = cuts.shift();
          if (cut === undefined) return void res.end();
          res.write(whole.subarray(at, cut));
          at = cut;
          setTimeout(next, 5);
        };
        next();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`; // trailing slash on purpose
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test("streams token texts in order, then resolves with the done event", async () => {
  const tokens: string[] = [];
  const result = await streamGenerate(
    baseUrl,
    { prompt: "Hi", max_tokens: 3, temperature: 0 },
    { onToken: (t) => tokens.push(t) },
  );
  assert.deepEqual(tokens, ["Hello", ", wörld"]);
  assert.deepEqual(result, DONE);
  assert.deepEqual(bodies.at(-1), { prompt: "Hi", max_tokens: 3, temperature: 0, stream: true });
});

test("a refusal before the stream is a NeurectomyError with code, field and status", async () => {
  await assert.rejects(
    streamGenerate(baseUrl, { prompt: "bad" }, { onToken: () => undefined }),
    (err: unknown) =>
      err instanceof NeurectomyError &&
      err.code === "bad_request" &&
      err.field === "max_tokens" &&
      err.status === 400,
  );
});

test("an error event mid-stream rejects after the tokens before it", async () => {
  const tokens: string[] = [];
  await assert.rejects(
    streamGenerate(baseUrl, { prompt: "fails" }, { onToken: (t) => tokens.push(t) }),
    (err: unknown) => err instanceof NeurectomyError && err.code === "timeout" && err.status === null,
  );
  assert.deepEqual(tokens, ["Hel"]);
});

test("aborting closes the connection (which cancels the generation on the service)", async () => {
  const abort = new AbortController();
  const pending = streamGenerate(
    baseUrl,
    { prompt: "endless" },
    { onToken: () => abort.abort(), signal: abort.signal },
  );
  await assert.rejects(pending, (err: unknown) => err instanceof Error && err.name === "AbortError");
  await closedMidStream;
});

test("the SSE parser handles LF, CRLF, comments and multi-line data", () => {
  const parser = new SseParser();
  assert.deepEqual(parser.feed(": keep-alive\n\nevent: token\ndata: a\ndata: b\n"), []);
  assert.deepEqual(parser.feed("\r\ndata: x\r"), [{ event: "token", data: "a\nb" }]);
  assert.deepEqual(parser.feed("\n\r\n"), [{ event: "message", data: "x" }]);
});

test("the API key is sent as a bearer token, and only when there is one", async () => {
  await streamGenerate(baseUrl, { prompt: "Hi", model: "gemma-3-270m-q4_k_m" }, { onToken: () => undefined, apiKey: KEY });
  assert.equal(authorizations.at(-1), `Bearer ${KEY}`);
  assert.deepEqual(bodies.at(-1), { prompt: "Hi", model: "gemma-3-270m-q4_k_m", stream: true });
  await streamGenerate(baseUrl, { prompt: "Hi" }, { onToken: () => undefined });
  assert.equal(authorizations.at(-1), undefined);
});

test("listModels returns the served models; without the key it is a 401 NeurectomyError", async () => {
  const models = await listModels(baseUrl, KEY);
  assert.deepEqual(
    models.map((m) => [m.id, m.kind, m.default]),
    [
      ["gemma-3-270m-q4_k_m", "generation", true],
      ["all-MiniLM-L6-v2", "embedding", false],
    ],
  );
  await assert.rejects(
    listModels(baseUrl),
    (err: unknown) => err instanceof NeurectomyError && err.status === 401 && err.code === "unauthorized",
  );
});
