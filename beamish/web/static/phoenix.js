// A small Phoenix Channels V2 client (JSON frames), written for beamish's pages.
//
// Frames are [join_ref, ref, topic, event, payload]. A socket connects with fresh params
// each time (`params()` is awaited before every connect, so a short-lived token is asked
// for anew), sends a heartbeat every 30 s, and reconnects by itself when the connection
// closes with any code but 1000 — a server restart closes with 1001 or 1012 — with the
// Phoenix client's backoff. Its channels rejoin after a reconnect, with their params
// function evaluated again (a conversation passes its last_seen_id that way).

const BACKOFF_MS = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000];
const HEARTBEAT_MS = 30000;
const PUSH_TIMEOUT_MS = 10000;

export class PushError extends Error {
  constructor(response) {
    super((response && (response.detail || response.reason)) || "refused");
    this.response = response || {};
  }
}

export class Socket {
  constructor(url, { params = async () => ({}), onState = () => {} } = {}) {
    this.url = url;
    this.params = params;
    this.onState = onState;
    this.ref = 0;
    this.channels = new Set();
    this.pending = new Map();
    this.attempts = 0;
    this.ws = null;
    this.stopped = false;
    this.timers = { heartbeat: null, reconnect: null };
  }

  nextRef() {
    this.ref += 1;
    return String(this.ref);
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  async connect() {
    this.stopped = false;
    this.onState("connecting");
    let params;
    try {
      params = await this.params();
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    const query = new URLSearchParams({ ...(params.query || {}), vsn: "2.0.0" });
    const protocols = params.token
      ? ["phoenix", "base64url.bearer.phx." + btoa(params.token).replace(/=+$/, "")]
      : [];
    const ws = new WebSocket(this.url + "?" + query.toString(), protocols);
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.onState("connected");
      this.timers.heartbeat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
      for (const channel of this.channels) channel.rejoin();
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
    ws.onerror = () => {};
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    clearInterval(this.timers.heartbeat);
    this.ws = null;
    for (const [, waiter] of this.pending) waiter.reject(new PushError({ reason: "disconnected" }));
    this.pending.clear();
    for (const channel of this.channels) channel.disconnected();
    if (this.stopped || code === 1000) {
      this.onState("closed");
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.onState("reconnecting");
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  disconnect() {
    this.stopped = true;
    clearTimeout(this.timers.reconnect);
    if (this.ws) this.ws.close(1000);
  }

  heartbeat() {
    this.send([null, this.nextRef(), "phoenix", "heartbeat", {}]).catch(() => {
      if (this.ws) this.ws.close(4000);
    });
  }

  send(frame) {
    if (!this.connected) return Promise.reject(new PushError({ reason: "disconnected" }));
    const ref = frame[1];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new PushError({ reason: "timeout" }));
      }, PUSH_TIMEOUT_MS);
      this.pending.set(ref, {
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      });
      this.ws.send(JSON.stringify(frame));
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (!Array.isArray(frame) || frame.length !== 5) return;
    const [joinRef, ref, topic, event, payload] = frame;
    if (event === "phx_reply" && ref !== null && this.pending.has(ref)) {
      const waiter = this.pending.get(ref);
      this.pending.delete(ref);
      if (payload && payload.status === "ok") waiter.resolve(payload.response || {});
      else waiter.reject(new PushError(payload ? payload.response : null));
      return;
    }
    for (const channel of this.channels) {
      if (channel.topic === topic) channel.receive(joinRef, event, payload);
    }
  }

  channel(topic, params = () => ({})) {
    const channel = new Channel(this, topic, params);
    this.channels.add(channel);
    return channel;
  }
}

export class Channel {
  constructor(socket, topic, params) {
    this.socket = socket;
    this.topic = topic;
    this.params = params;
    this.joinRef = null;
    this.handlers = new Map();
    this.joined = false;
    this.rejoinTimer = null;
  }

  on(event, handler) {
    this.handlers.set(event, handler);
  }

  async join() {
    const ref = this.socket.nextRef();
    this.joinRef = ref;
    const reply = await this.socket.send([ref, ref, this.topic, "phx_join", this.params()]);
    this.joined = true;
    const handler = this.handlers.get("joined");
    if (handler) handler(reply);
    return reply;
  }

  rejoin() {
    clearTimeout(this.rejoinTimer);
    this.join().catch((error) => {
      const handler = this.handlers.get("join_error");
      if (handler) handler(error);
      if (error.response.reason !== "disconnected") {
        this.rejoinTimer = setTimeout(() => this.rejoin(), 1000);
      }
    });
  }

  disconnected() {
    this.joined = false;
  }

  push(event, payload) {
    if (!this.joined) return Promise.reject(new PushError({ reason: "not joined" }));
    return this.socket.send([this.joinRef, this.socket.nextRef(), this.topic, event, payload]);
  }

  receive(joinRef, event, payload) {
    if (joinRef !== null && joinRef !== this.joinRef) return;
    if (event === "phx_error" || event === "phx_close") {
      this.joined = false;
      if (event === "phx_error" && this.socket.connected) {
        this.rejoinTimer = setTimeout(() => this.rejoin(), 1000);
      }
      return;
    }
    const handler = this.handlers.get(event);
    if (handler) handler(payload);
  }
}
