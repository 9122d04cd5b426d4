// The live runtime view: the admin API's runtime and sessions, polled every refresh-ms while
// the tab is visible (a hidden tab asks nothing; it catches up as soon as it is shown again).

const root = document.getElementById("runtime");
const base = document.getElementById("admin").dataset.api;
const period = Number(root.dataset.refreshMs) || 1500;
const updated = document.getElementById("runtime-updated");
const errorBox = document.getElementById("admin-error");
let timer = null;
let running = false; // a poll in flight: never two at once
let polls = 0;

async function get(path) {
  const response = await fetch(base + path, { credentials: "same-origin" });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  }
  return data;
}

function cellRow(values) {
  const tr = document.createElement("tr");
  values.forEach((value, index) => {
    const td = document.createElement(index === 0 ? "th" : "td");
    if (index === 0) td.setAttribute("scope", "row");
    td.textContent = String(value);
    tr.append(td);
  });
  return tr;
}

function treeItem(node) {
  const li = document.createElement("li");
  const line = document.createElement("span");
  line.className = "node";
  line.dataset.status = node.status;
  line.textContent = `${node.type} #${node.id} · ${node.status} · restarts ${node.restart_count}`;
  li.append(line);
  if (node.children.length) {
    const ul = document.createElement("ul");
    ul.append(...node.children.map(treeItem));
    if (node.children_total > node.children.length) {
      const more = document.createElement("li");
      more.textContent = `… and ${node.children_total - node.children.length} more`;
      ul.append(more);
    }
    li.append(ul);
  }
  return li;
}

function show(runtime, live) {
  document.getElementById("rt-sessions").textContent = runtime.sessions;
  document.getElementById("rt-actors").textContent = runtime.actors;
  document.getElementById("rt-mailbox").textContent = runtime.mailbox_total;
  document.getElementById("rt-tree").replaceChildren(...(runtime.tree ? [treeItem(runtime.tree)] : []));
  document.querySelector("#rt-busiest tbody").replaceChildren(...runtime.busiest.map((a) =>
    cellRow([a.name || "#" + a.id, a.type, a.status, a.mailbox_depth, a.restart_count])));
  document.querySelector("#rt-live tbody").replaceChildren(...live.sessions.map((s) =>
    cellRow([s.session_id, s.user_id])));
  polls += 1;
  root.dataset.polls = String(polls);
  updated.textContent = "Updated " + new Date().toLocaleTimeString() + "; refreshed every " +
    (period / 1000) + " s while this tab is visible.";
}

async function poll() {
  timer = null;
  if (running) return;
  running = true;
  try {
    const [runtime, live] = await Promise.all([get("admin/runtime?actors=20"), get("admin/sessions")]);
    show(runtime, live);
    errorBox.hidden = true;
  } catch (error) {
    errorBox.textContent = "The runtime view could not refresh: " + error.message;
    errorBox.hidden = false;
  } finally {
    running = false;
  }
  schedule();
}

function schedule() {
  if (timer === null && !running && !document.hidden) timer = setTimeout(poll, period);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearTimeout(timer);
    timer = null;
  } else if (timer === null && !running) {
    poll();
  }
});

poll();
