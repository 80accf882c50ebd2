// arbiter's demo page: lists the streams, watches one live and proposes
// transfers on a ledger.
//
// The page keeps no state of its own that it trusts. The watcher socket
// subscribes to the chosen stream: a `snapshot` is rendered as it is, and after
// each `patch` its events are added to the log and the state is fetched again
// over HTTP (GET /v1/streams/{stream}), so what is shown is always the server's.
// When the socket drops, it reconnects with backoff and subscribes again with
// `since` = the last seq it saw, so the log continues without a gap.
//
// Proposals go over a second socket per client id (a session proposes as the
// client id of its `hello`), opened when the form first needs it.

const PROTOCOL = 'arbiter.v1';
const RECONNECT_DELAY_MS_MIN = 500;
const RECONNECT_DELAY_MS_MAX = 10000;
const PING_INTERVAL_MS = 25000; // the server closes sockets idle for 60 s
const OUTCOME_TIMEOUT_MS = 15000;
const HISTORY_EVENTS = 20; // earlier events shown when a stream is first opened
const LOG_ROWS_MAX = 500;

const $ = (id) => document.getElementById(id);

const view = {
  stream: null, // the stream shown, "KIND:NAME"
  lastSeq: null, // the last seq the watcher received (snapshot or patch)
  version: -1, // the version of the state on screen
  state: null,
};

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const numberFormat = new Intl.NumberFormat('en');
const formatAmount = (n) => (typeof n === 'number' ? numberFormat.format(n) : String(n ?? ''));

function websocketUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/`;
}

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const streamPath = (stream) => `/v1/streams/${encodeURIComponent(stream)}`;

// ---------------------------------------------------------------- streams list

async function loadStreams() {
  const list = $('streams');
  const message = $('streams-message');
  message.textContent = 'Loading…';
  try {
    const { streams } = await getJson('/v1/streams');
    list.replaceChildren(...streams.map((name) => {
      const button = el('button', { type: 'button', class: 'stream', dataset: { stream: name } }, name);
      button.addEventListener('click', () => selectStream(name));
      return el('li', {}, button);
    }));
    message.textContent = streams.length === 0 ? 'No streams yet.' : '';
    markSelectedStream();
  } catch (error) {
    message.textContent = `Could not list streams: ${error.message}`;
  }
}

function markSelectedStream() {
  for (const button of document.querySelectorAll('button.stream')) {
    if (button.dataset.stream === view.stream) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

function selectStream(stream) {
  if (stream === view.stream) return;
  if (view.stream !== null) watcher.send({ type: 'unsubscribe', stream: view.stream });
  Object.assign(view, { stream, lastSeq: null, version: -1, state: null });
  history.replaceState(null, '', `#${encodeURIComponent(stream)}`);
  markSelectedStream();
  $('pick-hint').hidden = true;
  $('stream-view').hidden = false;
  $('stream-name').textContent = stream;
  $('version').textContent = '–';
  $('state').replaceChildren(el('p', { class: 'muted' }, 'Waiting for the snapshot…'));
  $('log-body').replaceChildren();
  $('outcome').replaceChildren();
  $('propose-panel').hidden = !stream.startsWith('ledger:');
  watcher.subscribe();
}

// ---------------------------------------------------------------- the watcher socket

const watcher = {
  socket: null,
  ready: false, // welcome received
  attempt: 0,
  clientId: `viewer-${Math.random().toString(36).slice(2, 10)}`,
  pingTimer: null,

  connect() {
    setConnection('connecting', 'connecting…');
    const socket = new WebSocket(websocketUrl(), PROTOCOL);
    this.socket = socket;
    this.ready = false;
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'hello', proto: 1, client_id: this.clientId }));
    });
    socket.addEventListener('message', (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.ready = false;
      clearInterval(this.pingTimer);
      this.reconnectLater(event.code);
    });
  },

  reconnectLater(code) {
    const base = Math.min(RECONNECT_DELAY_MS_MAX, RECONNECT_DELAY_MS_MIN * 2 ** this.attempt);
    const delayMs = Math.round(base * (0.75 + Math.random() * 0.25)); // jitter: not all at once
    this.attempt += 1;
    const why = code === 1001 ? 'server stopped' : `closed ${code}`;
    setConnection('offline', `disconnected (${why}); reconnecting in ${(delayMs / 1000).toFixed(1)} s`);
    setTimeout(() => this.connect(), delayMs);
  },

  send(message) {
    if (this.ready) this.socket.send(JSON.stringify(message));
  },

  subscribe() {
    if (!this.ready || view.stream === null) return;
    const message = { type: 'subscribe', stream: view.stream };
    if (view.lastSeq !== null) message.since = view.lastSeq;
    this.send(message);
  },

  receive(message) {
    switch (message.type) {
      case 'welcome':
        this.ready = true;
        this.attempt = 0;
        setConnection('connected', 'connected');
        this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_INTERVAL_MS);
        this.subscribe();
        break;
      case 'snapshot':
        if (message.stream === view.stream) onSnapshot(message);
        break;
      case 'patch':
        if (message.stream === view.stream) onPatch(message);
        break;
      case 'error':
        if (message.code === 'STREAM_NOT_FOUND') {
          $('state').replaceChildren(el('p', { class: 'error' }, `${view.stream} does not exist.`));
        } else {
          addLogNote(`server error ${message.code}: ${message.message}`);
        }
        break;
      default:
        break; // pong, and message types of later versions
    }
  },
};

function setConnection(state, text) {
  const node = $('connection');
  node.dataset.state = state;
  node.textContent = text;
}

function onSnapshot(message) {
  const first = view.lastSeq === null;
  if (!first) addLogNote(`resynchronised from a snapshot at seq ${message.seq}`);
  view.lastSeq = message.seq;
  renderState(message.seq, message.state);
  if (first) loadHistory(view.stream, message.seq);
}

function onPatch(message) {
  // Patches continue exactly after the last seq held; skip anything already
  // shown (a duplicate would be the server's bug, not something to display).
  const fresh = message.events.filter((event) => view.lastSeq === null || event.seq > view.lastSeq);
  for (const event of fresh) addLogEvent(event, true);
  view.lastSeq = message.seq;
  if (fresh.length > 0) refreshState();
}

// The few events before the snapshot, so the log does not start empty.
async function loadHistory(stream, seq) {
  if (seq === 0) return;
  const since = Math.max(0, seq - HISTORY_EVENTS);
  try {
    const body = await getJson(`${streamPath(stream)}/events?since=${since}&limit=${HISTORY_EVENTS}`);
    if (stream !== view.stream) return;
    const older = body.events.filter((event) => event.seq <= seq).reverse();
    for (const event of older) addLogEvent(event, false);
  } catch (error) {
    addLogNote(`could not load earlier events: ${error.message}`);
  }
}

// One state fetch at a time; patches that arrive meanwhile ask for one more.
let refreshing = false;
let refreshAgain = false;
async function refreshState() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  do {
    refreshAgain = false;
    const stream = view.stream;
    try {
      const body = await getJson(streamPath(stream));
      if (stream === view.stream) renderState(body.version, body.state);
    } catch (error) {
      addLogNote(`could not fetch the state: ${error.message}`);
    }
  } while (refreshAgain);
  refreshing = false;
}

// ---------------------------------------------------------------- rendering

function renderState(version, state) {
  if (version < view.version) return; // an older answer overtaken by a newer one
  const previous = view.state;
  view.version = version;
  view.state = state;
  $('version').textContent = String(version);
  const parts = state && typeof state.accounts === 'object'
    ? renderLedger(state, previous)
    : [el('pre', { class: 'json' }, JSON.stringify(state, null, 2))];
  $('state').replaceChildren(...parts);
  if (state && state.accounts) updateProposeForm(state.accounts);
}

function renderLedger(state, previous) {
  const accounts = Object.entries(state.accounts).sort(([a], [b]) => a.localeCompare(b));
  const rows = accounts.map(([id, account]) => {
    const before = previous?.accounts?.[id];
    const changed = before !== undefined && before.version !== account.version;
    return el('tr', { dataset: { account: id }, class: changed ? 'changed' : '' },
      el('th', { scope: 'row' }, id),
      el('td', {}, account.owner),
      el('td', {}, account.currency),
      el('td', { class: 'num balance' }, formatAmount(account.balance)),
      el('td', { class: 'num held' }, formatAmount(account.held)),
      el('td', { class: 'num' }, String(account.version)));
  });
  const table = el('table', { id: 'accounts', class: 'accounts' },
    el('caption', {}, 'Accounts'),
    el('thead', {}, el('tr', {},
      ...['account', 'owner', 'currency', 'balance', 'held', 'version'].map((name, i) =>
        el('th', { scope: 'col', class: i >= 3 ? 'num' : '' }, name)))),
    el('tbody', {}, ...rows));
  const parts = [el('div', { class: 'table-scroll' }, table)];

  const holds = Object.entries(state.pending ?? {});
  if (holds.length > 0) {
    parts.push(el('div', { class: 'table-scroll' }, el('table', { class: 'accounts' },
      el('caption', {}, 'Holds'),
      el('thead', {}, el('tr', {}, ...['hold', 'from', 'to', 'amount', 'status'].map((name) =>
        el('th', { scope: 'col', class: name === 'amount' ? 'num' : '' }, name)))),
      el('tbody', {}, ...holds.map(([id, hold]) => el('tr', {},
        el('th', { scope: 'row' }, id), el('td', {}, hold.from), el('td', {}, hold.to),
        el('td', { class: 'num' }, formatAmount(hold.amount)), el('td', {}, hold.status)))))));
  }

  const facts = [];
  if (state.max_transfer !== undefined) facts.push(`max transfer ${formatAmount(state.max_transfer)}`);
  for (const [currency, total] of Object.entries(state.totals ?? {})) {
    facts.push(`${currency}: deposited ${formatAmount(total.deposited)}, withdrawn ${formatAmount(total.withdrawn)}`);
  }
  if (facts.length > 0) parts.push(el('p', { class: 'muted small' }, facts.join(' · ')));
  return parts;
}

function addLogEvent(event, live) {
  const time = new Date(event.applied_at);
  const row = el('tr', { dataset: { seq: event.seq }, class: live ? 'live' : '' },
    el('td', { class: 'num' }, String(event.seq)),
    el('td', {}, el('span', { class: 'event-type' }, event.type)),
    el('td', {}, el('code', {}, formatData(event.data))),
    el('td', {}, event.client_id),
    el('td', {}, el('time', { datetime: time.toISOString() }, time.toLocaleTimeString())));
  insertLogRow(row, live);
}

// Compact JSON with a space after each separator, so long data wraps between
// members rather than inside a name. (Newlines inside strings stay escaped.)
const formatData = (data) => JSON.stringify(data, null, 1).replace(/\n\s*/g, ' ');

function addLogNote(text) {
  insertLogRow(el('tr', { class: 'note' }, el('td', { colspan: '5' }, text)), true);
}

function insertLogRow(row, newest) {
  const body = $('log-body');
  if (newest) body.prepend(row);
  else body.append(row);
  while (body.rows.length > LOG_ROWS_MAX) body.lastElementChild.remove();
}

// ---------------------------------------------------------------- proposing

function updateProposeForm(accounts) {
  const ids = Object.keys(accounts).sort();
  for (const select of [$('propose-from'), $('propose-to')]) {
    const chosen = select.value;
    select.replaceChildren(...ids.map((id) => el('option', { value: id }, id)));
    if (ids.includes(chosen)) select.value = chosen;
  }
  const from = $('propose-from');
  const to = $('propose-to');
  if (to.value === from.value && ids.length > 1) to.value = ids.find((id) => id !== from.value);
  const owners = [...new Set(Object.values(accounts).map((account) => account.owner))].sort();
  $('owners').replaceChildren(...owners.map((owner) => el('option', { value: owner })));
  const client = $('propose-client');
  if (client.value === '') client.value = accounts[from.value]?.owner ?? '';
}

// client_seq must be unique per client id, across reloads too: the server
// replays (or refuses) a key it has seen. The clock gives a fresh start after
// a reload; the stored last value keeps the sequence increasing within it.
function nextClientSeq(clientId) {
  const key = `arbiter.client_seq.${clientId}`;
  let last = 0;
  try { last = Number(localStorage.getItem(key)) || 0; } catch { /* storage disabled */ }
  const next = Math.max(last + 1, Date.now());
  try { localStorage.setItem(key, String(next)); } catch { /* storage disabled */ }
  return next;
}

const proposers = new Map(); // client id -> {ready: Promise<WebSocket>, waiting: Map<client_seq, {resolve, reject}>}

function proposerFor(clientId) {
  let proposer = proposers.get(clientId);
  if (proposer !== undefined) return proposer;
  proposer = { waiting: new Map() };
  proposer.ready = new Promise((resolve, reject) => {
    const socket = new WebSocket(websocketUrl(), PROTOCOL);
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'hello', proto: 1, client_id: clientId }));
    });
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'welcome') {
        resolve(socket);
      } else if (message.type === 'committed' || message.type === 'rejected') {
        const waiter = proposer.waiting.get(message.client_seq);
        proposer.waiting.delete(message.client_seq);
        waiter?.resolve(message);
      } else if (message.type === 'error') {
        // A refused frame names no client_seq; the form sends one proposal
        // at a time, so it answers the oldest one waiting.
        const failure = new Error(`${message.code}: ${message.message}`);
        const [first] = proposer.waiting;
        if (first === undefined) {
          reject(failure); // the hello itself was refused
          socket.close();
        } else {
          proposer.waiting.delete(first[0]);
          first[1].reject(failure);
        }
      }
    });
    socket.addEventListener('close', () => {
      proposers.delete(clientId);
      const failure = new Error('the connection closed before the outcome arrived');
      reject(failure);
      for (const waiter of proposer.waiting.values()) waiter.reject(failure);
      proposer.waiting.clear();
    });
  });
  proposers.set(clientId, proposer);
  return proposer;
}

async function propose(clientId, stream, action, args) {
  const proposer = proposerFor(clientId);
  const socket = await proposer.ready;
  const clientSeq = nextClientSeq(clientId);
  const outcome = new Promise((resolve, reject) => {
    proposer.waiting.set(clientSeq, { resolve, reject });
    setTimeout(() => reject(new Error('no answer from the server in time')), OUTCOME_TIMEOUT_MS);
  });
  socket.send(JSON.stringify({ type: 'propose', client_seq: clientSeq, stream, action, args }));
  return outcome;
}

function showOutcome(kind, ...children) {
  $('outcome').dataset.kind = kind;
  $('outcome').replaceChildren(...children);
}

async function onProposeSubmit(event) {
  event.preventDefault();
  const form = event.target;
  if (!form.reportValidity()) return;
  const clientId = $('propose-client').value.trim();
  const args = {
    from: $('propose-from').value,
    to: $('propose-to').value,
    amount: Number($('propose-amount').value),
  };
  const button = $('propose-submit');
  button.disabled = true;
  showOutcome('pending', `proposing as ${clientId}…`);
  try {
    const outcome = await propose(clientId, view.stream, 'transfer', args);
    if (outcome.type === 'committed') {
      showOutcome('committed', el('strong', {}, 'committed'), ` at seq ${outcome.seq}`,
        outcome.replay ? ' (replay)' : '');
    } else {
      showOutcome('rejected', el('strong', {}, 'rejected '), el('code', { class: 'code' }, outcome.code),
        ` — ${outcome.message}`);
      // A rejection carries the server's state at its version: take it.
      if (outcome.snapshot && outcome.stream === view.stream) renderState(outcome.version, outcome.snapshot);
    }
  } catch (error) {
    showOutcome('rejected', el('strong', {}, 'failed: '), error.message);
  } finally {
    button.disabled = false;
  }
}

function onFromChange() {
  const owner = view.state?.accounts?.[$('propose-from').value]?.owner;
  if (owner !== undefined) $('propose-client').value = owner;
}

// ---------------------------------------------------------------- start

$('streams-refresh').addEventListener('click', loadStreams);
$('propose').addEventListener('submit', onProposeSubmit);
$('propose-from').addEventListener('change', onFromChange);

watcher.connect();
await loadStreams();
const wanted = decodeURIComponent(location.hash.slice(1));
if (wanted !== '') selectStream(wanted);
