// The official phoenix JS client, unmodified, against a running beamish server.
//
// Run by tests/channels/test_phoenix_js.py, which asserts on the JSON summary this prints:
//   node conversation.mjs   (env: BEAMISH_SOCKET_URL, BEAMISH_TOKEN, BEAMISH_OTHER_TOKEN,
//                            BEAMISH_BAD_TOKEN)
// BEAMISH_SOCKET_URL is the endpoint without "/websocket" (ws://127.0.0.1:PORT/socket): the
// client appends "/websocket?...&vsn=2.0.0" itself. Node has no global WebSocket (it would
// silently fall back to LongPoll), hence `transport: WebSocket` from the ws package.
//
// Every step waits on a reply or an event, never on time; one overall deadline turns a hang
// into a failed run that still prints what it saw.
import { Socket } from "phoenix";
import WebSocket from "ws";

const url = process.env.BEAMISH_SOCKET_URL;
const token = process.env.BEAMISH_TOKEN;
const otherToken = process.env.BEAMISH_OTHER_TOKEN;
const badToken = process.env.BEAMISH_BAD_TOKEN;
const DEADLINE_MS = 15000;
const HEARTBEAT_MS = 100;

const summary = { steps: [] };

function finish(code) {
  process.stdout.write(JSON.stringify(summary) + "\n");
  process.exit(code);
}

setTimeout(() => {
  summary.timeout = `no result after ${DEADLINE_MS} ms; last step: ${summary.steps.at(-1)}`;
  finish(1);
}, DEADLINE_MS).unref();

function step(name) {
  summary.steps.push(name);
}

// A push's reply as a promise: {status, response}. "timeout" is the client's own 10 s timeout.
function reply(push) {
  return new Promise((resolve) => {
    push
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout", response: null }));
  });
}

function connect(options) {
  const socket = new Socket(url, { transport: WebSocket, ...options });
  const state = { opens: 0, closes: [], errors: 0 };
  socket.onOpen(() => state.opens++);
  socket.onClose((event) => state.closes.push(event.code));
  socket.onError(() => state.errors++);
  socket.connect();
  return { socket, state };
}

// Streams of one channel, keyed by request_id: token deltas and the terminal event.
function collectAnswers(channel) {
  const answers = new Map();
  const answer = (id) => {
    if (!answers.has(id)) {
      let settle;
      const finished = new Promise((resolve) => (settle = resolve));
      answers.set(id, { text: "", tokens: 0, finished, settle });
    }
    return answers.get(id);
  };
  channel.on("token", (p) => {
    const a = answer(p.request_id);
    a.text += p.delta;
    a.tokens++;
  });
  channel.on("done", (p) => answer(p.request_id).settle({ event: "done", payload: p }));
  channel.on("error", (p) => answer(p.request_id).settle({ event: "error", payload: p }));
  return answer;
}

async function ask(channel, answer, content) {
  const sent = await reply(channel.push("message", { content }));
  if (sent.status !== "ok") return { sent };
  const a = answer(sent.response.request_id);
  const end = await a.finished;
  return { sent, request_id: sent.response.request_id, text: a.text, tokens: a.tokens, ...end };
}

function waitFor(predicate) {
  return new Promise((resolve) => {
    const check = () => (predicate() ? resolve() : setTimeout(check, 20));
    check();
  });
}

async function paramsConnection() {
  step("connect with params.token");
  const { socket, state } = connect({ params: { token } });
  const channel = socket.channel("conversation:c1", { session_id: "s1" });
  const answer = collectAnswers(channel);
  let closed = false;
  channel.onClose(() => (closed = true));

  step("join");
  summary.join = await reply(channel.join());
  summary.protocol = socket.conn.protocol;

  step("message");
  summary.message = await ask(channel, answer, "hello from phoenix.js");

  step("bad payloads");
  summary.bad = {
    empty: await reply(channel.push("message", {})),
    temperature: await reply(
      channel.push("message", { content: "x", overrides: { temperature: 9 } })),
    unknown: await reply(channel.push("dance", {})),
  };

  step("get_config and set_preference");
  summary.set_preference = await reply(
    channel.push("set_preference", { provider: "echo", model: "echo-js" }));
  summary.get_config = await reply(channel.push("get_config", {}));
  summary.after_preference = await ask(channel, answer, "which model now?");

  step("cancel");
  const long = Array.from({ length: 3000 }, (_, n) => `word${n}`).join(" ");
  const sent = await reply(channel.push("message", { content: long }));
  const streaming = answer(sent.response.request_id);
  await waitFor(() => streaming.tokens > 0);
  summary.cancel = {
    reply: await reply(channel.push("cancel", { request_id: sent.response.request_id })),
    end: await streaming.finished,
  };

  step("leave");
  summary.leave = await reply(channel.leave());
  await waitFor(() => closed);
  summary.channel_closed = closed;
  summary.params_socket = { ...state };
  await new Promise((resolve) => socket.disconnect(resolve, 1000));
}

// The client's own heartbeats, every HEARTBEAT_MS. Their refs are read from the client's
// logger ("push phoenix heartbeat (join_ref, ref)") to count the replies that match one.
async function heartbeats() {
  step("heartbeats");
  const sent = new Set();
  const logger = (kind, msg) => {
    const pushed = kind === "push" && /^phoenix heartbeat \(.*, (\d+)\)$/.exec(msg);
    if (pushed) sent.add(pushed[1]);
  };
  const options = { params: { token }, heartbeatIntervalMs: HEARTBEAT_MS, logger };
  const { socket, state } = connect(options);
  let matched = 0;
  socket.onMessage((msg) => {
    if (msg.event === "phx_reply" && sent.has(msg.ref)) matched++;
  });
  await waitFor(() => matched >= 3);
  summary.ping_ms = await new Promise((resolve) => socket.ping(resolve));
  summary.heartbeats = { sent: sent.size, matched, ...state };
  await new Promise((resolve) => socket.disconnect(resolve, 1000));
}

async function authTokenConnection() {
  step("connect with authToken (subprotocol)");
  const { socket, state } = connect({ authToken: token });
  const channel = socket.channel("conversation:c1", { session_id: "s1" });
  const answer = collectAnswers(channel);
  summary.auth_token = { join: await reply(channel.join()), protocol: socket.conn.protocol };
  summary.auth_token.message = await ask(channel, answer, "and over the subprotocol");
  summary.auth_token.usage = await reply(channel.push("usage", {}));
  summary.auth_token.leave = await reply(channel.leave());
  summary.auth_token.socket = { ...state };
  await new Promise((resolve) => socket.disconnect(resolve, 1000));
}

async function refusals() {
  step("another user's conversation id (their own conversation of that id)");
  const { socket } = connect({ authToken: otherToken });
  const channel = socket.channel("conversation:c1", {});
  summary.foreign_join = await reply(channel.join());
  await reply(channel.leave());
  await new Promise((resolve) => socket.disconnect(resolve, 1000));

  step("bad token");
  // A refused upgrade (403) is a transport error; the client would reconnect with backoff.
  const bad = connect({ params: { token: badToken }, reconnectAfterMs: () => 60000 });
  await waitFor(() => bad.state.errors > 0);
  summary.bad_token = { ...bad.state, connected: bad.socket.isConnected() };
  bad.socket.disconnect(null, 1000);
}

try {
  await paramsConnection();
  await heartbeats();
  await authTokenConnection();
  await refusals();
  step("end");
  finish(0);
} catch (err) {
  summary.exception = String(err && err.stack ? err.stack : err);
  finish(1);
}
