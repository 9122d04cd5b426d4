// The chat page: one conversation over the conversation channel, tokens as they stream.
import { Socket } from "./phoenix.js";
import { renderInto } from "./markdown.js";

const root = document.getElementById("chat");
const messages = document.getElementById("messages");
const status = document.getElementById("status");
const errorBox = document.getElementById("chat-error");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const stopButton = document.getElementById("stop");
const regenerateButton = document.getElementById("regenerate");

const conversationId = root.dataset.conversation;
let lastId = Number(root.dataset.lastId) || 0;
let streaming = null; // the request id of the answer streaming now
const answers = new Map(); // request id -> {element, text}
const shown = new Set(); // "role:request_id" of each message on the page

const STATES = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

function setState(state) {
  status.dataset.state = state;
  status.textContent = STATES[state] || state;
  updateButtons();
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function updateButtons() {
  const online = status.dataset.state === "joined";
  stopButton.disabled = streaming === null;
  regenerateButton.disabled = !online || streaming !== null || lastUserText() === null;
}

function lastUserText() {
  const users = messages.querySelectorAll('.message[data-role="user"] .content');
  return users.length ? users[users.length - 1].textContent : null;
}

function addMessage(role, text, requestId) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.role = role;
  if (requestId) item.dataset.request = requestId;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Assistant";
  const content = document.createElement("div");
  content.className = "content";
  if (role === "assistant") renderInto(content, text);
  else content.textContent = text;
  item.append(who, content);
  messages.append(item);
  if (requestId) shown.add(role + ":" + requestId);
  item.scrollIntoView({ block: "end" });
  return item;
}

function answerFor(requestId) {
  let answer = answers.get(requestId);
  if (!answer) {
    const element = addMessage("assistant", "", requestId);
    element.setAttribute("aria-busy", "true");
    answer = { element, text: "" };
    answers.set(requestId, answer);
  }
  return answer;
}

function describe(done) {
  const usage = done.usage || {};
  const tokens = usage.total_tokens ?? ((usage.prompt_tokens || 0) + (usage.completion_tokens || 0));
  return `${done.provider} · ${done.model} · ${tokens} tokens`;
}

function finish(requestId, meta, state) {
  const answer = answerFor(requestId);
  answer.element.removeAttribute("aria-busy");
  answer.element.dataset.state = state;
  renderInto(answer.element.querySelector(".content"), answer.text);
  const line = document.createElement("p");
  line.className = "meta";
  line.textContent = meta;
  answer.element.append(line);
  if (streaming === requestId) streaming = null;
  updateButtons();
}

async function socketParams() {
  const response = await fetch(root.dataset.tokenUrl, { method: "POST", credentials: "same-origin" });
  if (response.status === 401) {
    window.location.reload(); // signed out meanwhile: the page sends us to sign in
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error("no socket token");
  const body = await response.json();
  return body.token ? { token: body.token } : { query: { user_id: body.user_id } };
}

const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
const socket = new Socket(`${scheme}//${window.location.host}${root.dataset.socketPath}`, {
  params: socketParams,
  onState: setState,
});
const channel = socket.channel("conversation:" + conversationId, () => ({
  session_id: conversationId,
  last_seen_id: lastId,
}));

channel.on("joined", (reply) => {
  lastId = Math.max(lastId, reply.last_id || 0);
  setState("joined");
  status.textContent = "Connected";
  showError("");
});
channel.on("join_error", (error) => showError("Could not open the conversation: " + error.message));
channel.on("history", (payload) => {
  for (const m of payload.messages || []) {
    lastId = Math.max(lastId, m.id);
    if (!shown.has(m.role + ":" + m.request_id)) addMessage(m.role, m.content, m.request_id);
  }
  updateButtons();
});
channel.on("token", (payload) => {
  const answer = answerFor(payload.request_id);
  answer.text += payload.delta;
  answer.element.querySelector(".content").textContent = answer.text;
});
channel.on("done", (payload) => finish(payload.request_id, describe(payload), "done"));
channel.on("error", (payload) => {
  if (payload.reason === "cancelled") {
    finish(payload.request_id, "Stopped", "cancelled");
  } else {
    finish(payload.request_id, "Failed: " + (payload.detail || payload.reason), "error");
  }
});

async function send(content) {
  showError("");
  try {
    const reply = await channel.push("message", { content });
    streaming = reply.request_id;
    answerFor(reply.request_id);
    updateButtons();
    return reply.request_id;
  } catch (error) {
    showError("Not sent: " + error.message);
    return null;
  }
}

const MAX_TITLE = 60;

function nameConversation(content) {
  // The list is drawn by the server; a new conversation takes its first message's words.
  const current = document.querySelector('.conversations li a[aria-current="page"]');
  if (!current || current.dataset.untitled !== "yes") return;
  const line = content.split(/\s+/).filter(Boolean).join(" ");
  current.textContent = line.length <= MAX_TITLE ? line : line.slice(0, MAX_TITLE - 1) + "…";
  current.dataset.untitled = "no";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = input.value;
  if (!content.trim()) return;
  input.value = "";
  nameConversation(content);
  const item = addMessage("user", content, null);
  const requestId = await send(content);
  if (requestId) {
    item.dataset.request = requestId;
    shown.add("user:" + requestId);
  }
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});

stopButton.addEventListener("click", () => {
  if (streaming !== null) channel.push("cancel", { request_id: streaming }).catch(() => {});
});

regenerateButton.addEventListener("click", async () => {
  // The last question again, as a new turn: its answer takes the old answer's place here.
  const question = lastUserText();
  if (question === null) return;
  const items = messages.querySelectorAll(".message");
  const last = items[items.length - 1];
  if (last && last.dataset.role === "assistant") last.remove();
  await send(question);
});

for (const element of messages.querySelectorAll('.message')) {
  shown.add(element.dataset.role + ":" + element.dataset.request);
  const content = element.querySelector(".content");
  if (element.dataset.role === "assistant") renderInto(content, content.textContent);
}
updateButtons();
socket.connect();
