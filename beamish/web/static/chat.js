// The chat page: one conversation over the conversation channel, tokens as they stream;
// the list of conversations (rename, delete), the model and task type of the next
// messages, thumbs on answers, stop and regenerate.
import { Socket } from "./phoenix.js";
import { renderInto } from "./markdown.js";
import { apiClient } from "./api.js";

const root = document.getElementById("chat");
const messages = document.getElementById("messages");
const status = document.getElementById("status");
const errorBox = document.getElementById("chat-error");
const listError = document.getElementById("list-error");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const stopButton = document.getElementById("stop");
const regenerateButton = document.getElementById("regenerate");
const modelSelect = document.getElementById("model");
const taskSelect = document.getElementById("task-type");

const conversationId = root.dataset.conversation;
const apiBase = root.dataset.api;
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

function showError(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

const api = apiClient(apiBase);

function updateButtons() {
  const online = status.dataset.state === "joined";
  stopButton.disabled = streaming === null;
  regenerateButton.disabled = !online || streaming !== null || lastUserText() === null;
}

function lastUserText() {
  const users = messages.querySelectorAll('.message[data-role="user"] .content');
  return users.length ? users[users.length - 1].textContent : null;
}

// -- the model and task type of this conversation's next messages ---------------------------

const optionsKey = "beamish.chat.options." + conversationId;

function restoreOptions() {
  let saved = null;
  try {
    saved = JSON.parse(window.localStorage.getItem(optionsKey) || "null");
  } catch {
    saved = null;
  }
  if (!saved) return;
  if ([...modelSelect.options].some((o) => o.value === saved.model)) modelSelect.value = saved.model;
  if ([...taskSelect.options].some((o) => o.value === saved.task_type)) taskSelect.value = saved.task_type;
}

function saveOptions() {
  const chosen = { model: modelSelect.value, task_type: taskSelect.value };
  window.localStorage.setItem(optionsKey, JSON.stringify(chosen));
}

function messageOptions() {
  const options = { task_type: taskSelect.value || "chat" };
  if (modelSelect.value) {
    const [provider, ...model] = modelSelect.value.split("|");
    options.overrides = { provider, model: model.join("|") };
  }
  return options;
}

modelSelect.addEventListener("change", saveOptions);
taskSelect.addEventListener("change", saveOptions);

// -- messages ------------------------------------------------------------------------------

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

function finish(requestId, meta, state, messageId) {
  const answer = answerFor(requestId);
  answer.element.removeAttribute("aria-busy");
  answer.element.dataset.state = state;
  renderInto(answer.element.querySelector(".content"), answer.text);
  const line = document.createElement("p");
  line.className = "meta";
  line.textContent = meta;
  answer.element.append(line);
  if (messageId) {
    answer.element.dataset.id = String(messageId);
    addRating(answer.element);
  }
  if (streaming === requestId) streaming = null;
  updateButtons();
}

// -- thumbs ------------------------------------------------------------------------------

const RATINGS = [
  ["up", "Good answer", "Good"],
  ["down", "Bad answer", "Bad"],
];

function showRating(element, rating) {
  element.dataset.rating = rating || "";
  for (const button of element.querySelectorAll(".rating button")) {
    button.setAttribute("aria-pressed", String(button.dataset.rating === rating));
  }
}

function addRating(element) {
  const box = document.createElement("div");
  box.className = "rating";
  for (const [value, label, text] of RATINGS) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.rating = value;
    button.setAttribute("aria-label", label);
    button.textContent = text; // words, not emoji: not every system has an emoji font
    button.addEventListener("click", () => rate(element, value));
    box.append(button);
  }
  element.append(box);
  showRating(element, element.dataset.rating || "");
}

async function rate(element, value) {
  const rating = element.dataset.rating === value ? null : value;
  const path = `conversations/${encodeURIComponent(conversationId)}/messages/${element.dataset.id}/rating`;
  try {
    const saved = await api(path, { method: "PUT", body: { rating } });
    showRating(element, saved.rating || "");
    showError(errorBox, "");
  } catch (error) {
    showError(errorBox, "Rating not saved: " + error.message);
  }
}

// -- the socket ------------------------------------------------------------------------------

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
  showError(errorBox, "");
});
channel.on("join_error", (error) => showError(errorBox, "Could not open the conversation: " + error.message));
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
channel.on("done", (payload) => {
  if (payload.message_id) lastId = Math.max(lastId, payload.message_id);
  finish(payload.request_id, describe(payload), "done", payload.message_id);
});
channel.on("error", (payload) => {
  if (payload.reason === "cancelled") {
    finish(payload.request_id, "Stopped", "cancelled");
  } else {
    finish(payload.request_id, "Failed: " + (payload.detail || payload.reason), "error");
  }
});

async function start(event, payload) {
  showError(errorBox, "");
  try {
    const reply = await channel.push(event, payload);
    streaming = reply.request_id;
    answerFor(reply.request_id);
    updateButtons();
    return reply.request_id;
  } catch (error) {
    showError(errorBox, "Not sent: " + error.message);
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
  const requestId = await start("message", { content, ...messageOptions() });
  if (requestId) {
    item.dataset.request = requestId;
    shown.add("user:" + requestId);
  } else {
    item.remove();
    input.value = content;
  }
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});

stopButton.addEventListener("click", () => {
  if (streaming !== null) channel.push("cancel", { request_id: streaming }).catch(() => {});
});

regenerateButton.addEventListener("click", async () => {
  // The server drops the last answer and answers its question again: the new answer
  // takes the old one's place, and the question is not asked twice.
  const items = messages.querySelectorAll(".message");
  const last = items[items.length - 1];
  const requestId = await start("regenerate", messageOptions());
  if (requestId && last && last.dataset.role === "assistant" && last.dataset.request !== requestId) {
    answers.delete(last.dataset.request);
    last.remove();
  }
});

// -- the list: rename and delete ---------------------------------------------------------

function conversationPath(item) {
  return "conversations/" + encodeURIComponent(item.dataset.conversation);
}

for (const item of document.querySelectorAll(".conversations li[data-conversation]")) {
  const renameForm = item.querySelector(".rename-form");
  const renameButton = item.querySelector("button.rename");
  const deleteButton = item.querySelector("button.delete");
  const link = item.querySelector("a");
  if (!renameForm || !renameButton || !deleteButton) continue;
  renameButton.addEventListener("click", () => {
    renameForm.hidden = !renameForm.hidden;
    if (!renameForm.hidden) renameForm.querySelector("input").focus();
  });
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = renameForm.querySelector("input").value;
    try {
      const renamed = await api(conversationPath(item) + "/title", { method: "PUT", body: { title } });
      link.textContent = renamed.title;
      renameButton.setAttribute("aria-label", "Rename " + renamed.title);
      deleteButton.setAttribute("aria-label", "Delete " + renamed.title);
      renameForm.querySelector("label").textContent = "New title for " + renamed.title;
      renameForm.hidden = true;
      showError(listError, "");
    } catch (error) {
      showError(listError, "Not renamed: " + error.message);
    }
  });
  deleteButton.addEventListener("click", async () => {
    if (!window.confirm(`Delete “${link.textContent}” and its messages?`)) return;
    try {
      await api(conversationPath(item), { method: "DELETE" });
    } catch (error) {
      showError(listError, "Not deleted: " + error.message);
      return;
    }
    if (item.dataset.conversation === conversationId) {
      window.location.assign(root.dataset.home);
    } else {
      item.remove();
    }
  });
}

for (const element of messages.querySelectorAll(".message")) {
  shown.add(element.dataset.role + ":" + element.dataset.request);
  const content = element.querySelector(".content");
  if (element.dataset.role === "assistant") {
    renderInto(content, content.textContent);
    if (element.dataset.id) addRating(element);
  }
}
restoreOptions();
updateButtons();
socket.connect();
