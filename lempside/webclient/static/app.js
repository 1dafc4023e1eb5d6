'use strict';
// The demo client's user interface over LempClient (lemp.js). The server keeps
// no history, so conversations and known groups are kept in this browser's
// localStorage, per user. Everything a user or the server wrote is put in the
// page with textContent, never as HTML.
(function () {
  const $ = (id) => document.getElementById(id);
  const HISTORY = 200; // messages kept per conversation
  const SESSION_KEY = 'lempgw:session';

  let client = null;
  let me = '';
  let contacts = new Map(); // name -> {u, n, status, picture, lastSeen}
  let online = new Set(); // names shown online (li/lo, s)
  const pushes = new Map(); // name -> li/lo pushes seen, to spot stale state answers
  let groups = new Map(); // id -> {i, n, members[], gone}
  let convs = new Map(); // key (user, JID or group id) -> {key, msgs[], unread}
  let mine = new Map(); // id of a message I sent -> msg
  let current = '';
  let bannerTimer = 0;

  // ---- helpers ----

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function splitNames(s) {
    return s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
  }

  function isGroup(key) {
    return groups.has(key);
  }

  function displayName(key) {
    const c = contacts.get(key);
    if (c && c.n) return c.n;
    const g = groups.get(key);
    if (g && g.n) return g.n;
    return key;
  }

  function safeImage(url) {
    return typeof url === 'string' && /^(https?:\/\/|data:image\/)/i.test(url);
  }

  function clock(ms) {
    const d = new Date(ms);
    const now = new Date();
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return d.toDateString() === now.toDateString() ? hm : d.toLocaleDateString() + ' ' + hm;
  }

  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return 'just now';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return new Date(ms).toLocaleDateString();
  }

  function showError(text, code) {
    const b = $('banner');
    $('banner-text').textContent = code ? text + ' (' + code + ')' : text;
    b.dataset.code = code || '';
    b.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { b.hidden = true; }, 10000);
  }

  function errorText(err) {
    return (err && err.message) || String(err);
  }

  // run performs a request for a user action and shows its error.
  async function run(op) {
    try {
      return await client.request(op);
    } catch (err) {
      showError(errorText(err), err.code);
      throw err;
    }
  }

  // quiet performs a background request; errors only go to the console.
  async function quiet(op) {
    try {
      return await client.request(op);
    } catch (err) {
      console.debug('lempgw:', JSON.stringify(op), errorText(err));
      return null;
    }
  }

  // ---- storage ----

  function storeKey() {
    return 'lempgw:v1:' + me;
  }

  function load() {
    convs = new Map();
    groups = new Map();
    mine = new Map();
    let data = null;
    try {
      data = JSON.parse(localStorage.getItem(storeKey()) || 'null');
    } catch (_) { /* start afresh */ }
    if (!data) return;
    for (const g of data.groups || []) groups.set(g.i, g);
    for (const c of data.convs || []) {
      convs.set(c.key, { key: c.key, msgs: c.msgs || [], unread: c.unread || 0 });
      for (const m of c.msgs || []) if (m.mine) mine.set(m.id, m);
    }
  }

  let saveTimer = 0;
  function save() {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => {
      const data = {
        groups: Array.from(groups.values()),
        convs: Array.from(convs.values(), (c) => ({ key: c.key, unread: c.unread, msgs: c.msgs.slice(-HISTORY) })),
      };
      try {
        localStorage.setItem(storeKey(), JSON.stringify(data));
      } catch (_) { /* full or disabled: keep going without history */ }
    }, 200);
  }

  function conv(key) {
    let c = convs.get(key);
    if (!c) {
      c = { key, msgs: [], unread: 0 };
      convs.set(key, c);
    }
    return c;
  }

  // ---- login ----

  function wsURL(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  }

  async function wsPath() {
    try {
      const r = await fetch('config.json', { cache: 'no-store' });
      const c = await r.json();
      if (typeof c.ws_path === 'string' && c.ws_path.startsWith('/')) return c.ws_path;
    } catch (_) { /* the default below */ }
    return '/lemp';
  }

  async function login(identity, token) {
    $('login-error').textContent = '';
    $('login-btn').disabled = true;
    const c = new window.LempClient(wsURL(await wsPath()));
    wire(c);
    try {
      await c.login(identity, token);
    } catch (err) {
      $('login-btn').disabled = false;
      $('login-error').textContent = errorText(err);
      sessionStorage.removeItem(SESSION_KEY);
      return;
    }
    $('login-btn').disabled = false;
    client = c;
    me = identity.toLowerCase();
    // Kept for this tab only, so a reload logs in again.
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ i: identity, t: token }));
    load();
    $('me').textContent = me;
    renderMe('');
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    renderAll();
    refresh();
  }

  function toLogin(message) {
    if (client) client.logout();
    client = null;
    sessionStorage.removeItem(SESSION_KEY);
    $('app-view').hidden = true;
    $('login-view').hidden = false;
    $('token').value = '';
    $('login-error').textContent = message || '';
    contacts = new Map();
    online = new Set();
    current = '';
  }

  // refresh reads what the server knows after each login: followings and
  // their state, status and picture, and my own status and picture.
  async function refresh() {
    const rp = await quiet({ get: { o: 'f' } });
    if (rp) {
      const next = new Map();
      for (const f of rp.f || []) {
        const old = contacts.get(f.u) || {};
        next.set(f.u, Object.assign(old, { u: f.u, n: f.n || '' }));
      }
      contacts = next;
      renderContacts();
      for (const u of contacts.keys()) loadContact(u);
    }
    const st = await quiet({ st: { t: 'g', u: me } });
    if (st && st.st) $('status-input').value = st.st.s || '';
    const p = await quiet({ p: { t: 'g', u: me } });
    if (p && p.p) {
      $('picture-input').value = p.p.v || '';
      renderMe(p.p.v || '');
    }
    if (current && isGroup(current)) loadGroup(current);
  }

  async function loadContact(u) {
    const c = contacts.get(u);
    if (!c) return;
    const seen = pushes.get(u) || 0;
    const [s, st, p] = await Promise.all([
      quiet({ s: { u } }), quiet({ st: { t: 'g', u } }), quiet({ p: { t: 'g', u } }),
    ]);
    // A li/lo that came while the state was asked for is newer than the
    // answer (a Jabber user's state can take seconds: XEP-0012).
    if (s && s.s && (pushes.get(u) || 0) === seen) {
      c.lastSeen = s.s.v;
      if (s.s.v === 0) online.add(u);
      else online.delete(u);
    }
    if (st && st.st) c.status = st.st.s || '';
    if (p && p.p) c.picture = p.p.v || '';
    renderContacts();
    if (current === u) renderHead();
  }

  async function loadGroup(id) {
    const rp = await quiet({ g: { t: 'i', i: id } });
    const g = groups.get(id);
    if (!rp || !rp.g || !g) return;
    g.n = rp.g.n || g.n || '';
    g.members = rp.g.m || [];
    g.admins = rp.g.ad || [];
    g.picture = rp.g.p || '';
    save();
    renderGroups();
    if (current === id) renderHead();
  }

  // ---- events from the server ----

  function wire(c) {
    // Events of an older session (after a logout or a newer login) are ignored.
    const live = (fn) => (ev) => { if (client === c) fn(ev); };
    c.addEventListener('state', (ev) => {
      if (client && client !== c) return; // an older session's last words
      const s = ev.detail.state;
      const label = {
        online: 'online', connecting: 'connecting…', offline: 'offline',
        reconnecting: 'reconnecting in ' + Math.ceil((ev.detail.retryIn || 0) / 1000) + 's',
      }[s];
      $('conn').textContent = label;
      $('conn').dataset.state = s;
      if (s !== 'online') {
        online = new Set(); // unknown until the next login tells again
        renderContacts();
      }
    });
    // After a reconnect: read everything again. (The first login's
    // refresh is login's, which sets client once this has run.)
    c.addEventListener('loggedin', live(refresh));
    c.addEventListener('closed', (ev) => {
      const { code, reason, final } = ev.detail;
      if (!final || client !== c) return;
      if (code === 1000) return; // our own logout
      const why = code === 4409 ? 'Logged in elsewhere: this session was closed.'
        : code === 4404 ? 'This account was deleted.'
          : 'Session ended: ' + (reason || 'connection closed');
      toLogin(why);
      showError(why, code);
    });
    c.addEventListener('message', live((ev) => onMessage(ev.detail.m)));
    c.addEventListener('sent', live((ev) => setMark(ev.detail.id, 'sent')));
    c.addEventListener('receipt', live((ev) => {
      const { kind, id, from } = ev.detail;
      const m = mine.get(id);
      if (!m) return;
      m.by = m.by || {};
      if (kind === 'nm' || m.by[from] !== 'read') m.by[from] = kind === 'nm' ? 'read' : 'delivered';
      setMark(id, kind === 'nm' ? 'read' : 'delivered');
    }));
    c.addEventListener('msgerror', live((ev) => {
      const { id, e } = ev.detail;
      const m = mine.get(id);
      if (m) {
        m.state = 'failed';
        m.error = (e.d || 'error') + ' (' + e.c + ')';
        save();
        renderMessages();
      }
      showError(e.d || 'message refused', e.c);
    }));
    c.addEventListener('presence', live((ev) => {
      const { user, online: on } = ev.detail;
      pushes.set(user, (pushes.get(user) || 0) + 1);
      if (on) online.add(user);
      else {
        online.delete(user);
        const ct = contacts.get(user);
        if (ct) ct.lastSeen = Date.now();
      }
      renderContacts();
      if (current === user) renderHead();
    }));
    c.addEventListener('group', live((ev) => onGroupEvent(ev.detail.g)));
    c.addEventListener('error', live((ev) => showError(ev.detail.e.d || 'error', ev.detail.e.c)));
  }

  const RANK = { pending: 0, sent: 1, delivered: 2, read: 3 };

  function setMark(id, state) {
    const m = mine.get(id);
    if (!m) return;
    // Receipts can overtake one another (dm after nm): never go back.
    if (m.state === 'failed' || RANK[state] <= RANK[m.state]) return;
    m.state = state;
    save();
    const li = document.querySelector('.msg[data-id="' + CSS.escape(id) + '"]');
    if (li) fillMark(li, m);
  }

  function onMessage(m) {
    // A 1:1 message has r = me; a group message has r = the group.
    const key = m.r === me ? m.s : m.r;
    if (m.r !== me && !groups.has(key)) {
      groups.set(key, { i: key, n: '', members: [] });
      renderGroups();
    }
    const c = conv(key);
    const confirm = m.pc !== '0';
    const dup = c.msgs.find((x) => !x.mine && x.id === m.id && x.s === m.s);
    if (dup) {
      // Sent again because our dm did not reach the server: say it again.
      if (confirm) client.receipt('dm', m.id);
      return;
    }
    const msg = {
      id: m.id, s: m.s, r: m.r, t: m.t || 't', c: m.c || '', st: m.st || Date.now(),
      mine: m.s === me && m.r === me, confirm, noticed: false,
    };
    if (msg.mine) {
      // A note to myself: it is also in my own list as sent.
      const own = mine.get(m.id);
      if (own) {
        if (confirm) client.receipt('dm', m.id);
        return;
      }
    }
    c.msgs.push(msg);
    if (c.msgs.length > HISTORY) c.msgs.splice(0, c.msgs.length - HISTORY);
    if (confirm) client.receipt('dm', m.id); // delivered: it is in the page now
    if (key === current && document.visibilityState === 'visible') {
      notice(msg);
    } else {
      c.unread++;
    }
    save();
    renderConvList(key);
    if (key === current) appendMessage(msg, true);
  }

  // notice sends nm for a message the user has seen.
  function notice(msg) {
    if (msg.noticed || msg.mine) return;
    if (!msg.confirm || client.receipt('nm', msg.id)) msg.noticed = true;
  }

  function markCurrentRead() {
    if (!current || document.visibilityState !== 'visible' || !client) return;
    const c = convs.get(current);
    if (!c) return;
    for (const m of c.msgs) notice(m);
    if (c.unread) {
      c.unread = 0;
      renderConvList(current);
    }
    save();
  }

  function onGroupEvent(g) {
    const id = g.i;
    if (!id) return;
    let grp = groups.get(id);
    if (!grp) {
      grp = { i: id, n: '', members: [] };
      groups.set(id, grp);
    }
    const actor = g.s || '';
    const names = Array.isArray(g.m) ? g.m : g.m ? [g.m] : [];
    let text = '';
    switch (g.t) {
      case 'c':
        grp.n = g.n || grp.n;
        grp.gone = false;
        text = actor + ' created the group' + (g.n ? ' "' + g.n + '"' : '');
        break;
      case 'a':
        text = actor + ' added ' + names.join(', ');
        if (names.includes(me)) grp.gone = false;
        break;
      case 'b':
        text = actor + ' removed ' + names.join(', ');
        if (names.includes(me)) grp.gone = true;
        break;
      case 'l':
        text = names.join(', ') + ' left';
        if (names.includes(me)) grp.gone = true;
        break;
      case 't':
        text = actor + ' ended the group';
        grp.gone = true;
        break;
      case 'n':
        grp.n = g.n || '';
        text = actor + ' renamed the group to "' + (g.n || '') + '"';
        break;
      case 'p':
        text = actor + ' changed the picture';
        break;
      default:
        return;
    }
    const c = conv(id);
    c.msgs.push({ sys: true, id: 'ev' + Date.now() + Math.random(), c: text, st: Date.now() });
    save();
    renderGroups();
    if (current === id) {
      renderMessages();
      if (!grp.gone) loadGroup(id);
      renderHead();
    }
  }

  // ---- actions ----

  function sendText(text) {
    if (!current || !text) return;
    const m = client.send({ r: current, t: 't', c: text });
    const msg = { id: m.id, s: me, r: current, t: 't', c: text, st: Date.now(), mine: true, state: 'pending' };
    mine.set(msg.id, msg);
    conv(current).msgs.push(msg);
    save();
    appendMessage(msg, true);
    renderConvList(current);
  }

  function open(key) {
    current = key;
    $('app-view').classList.add('chat-open');
    $('chat-empty').hidden = true;
    $('chat-pane').hidden = false;
    renderHead();
    renderMessages();
    renderContacts();
    renderGroups();
    markCurrentRead();
    if (isGroup(key)) loadGroup(key);
    else if (contacts.has(key)) loadContact(key);
    $('composer-input').focus();
  }

  // ---- rendering ----

  function avatar(key, picture, group) {
    const a = el('span', 'avatar' + (group ? ' group' : ''));
    if (safeImage(picture)) {
      const img = el('img');
      img.alt = '';
      img.src = picture;
      img.referrerPolicy = 'no-referrer';
      a.append(img);
    } else {
      a.textContent = (displayName(key) || '?').slice(0, 1);
    }
    return a;
  }

  function renderMe(picture) {
    const a = avatar(me, picture, false);
    a.id = 'me-avatar';
    a.classList.add('small-avatar');
    $('me-avatar').replaceWith(a);
  }

  function renderAll() {
    renderContacts();
    renderGroups();
    if (current) {
      renderHead();
      renderMessages();
    }
  }

  function contactSub(u) {
    const c = contacts.get(u) || {};
    if (online.has(u)) return c.status ? 'online · ' + c.status : 'online';
    const seen = c.lastSeen > 0 ? 'last seen ' + ago(c.lastSeen) : c.lastSeen === -1 ? 'never online' : 'offline';
    return c.status ? seen + ' · ' + c.status : seen;
  }

  function renderContacts() {
    const ul = $('contacts');
    ul.textContent = '';
    // Contacts first, then people who wrote to me without being followed.
    const keys = Array.from(contacts.keys());
    for (const k of convs.keys()) if (!contacts.has(k) && !groups.has(k) && !keys.includes(k)) keys.push(k);
    for (const u of keys) {
      const c = contacts.get(u) || {};
      const li = el('li', u === current ? 'current' : '');
      li.dataset.user = u;
      li.dataset.online = String(online.has(u));
      li.append(avatar(u, c.picture, false));
      const who = el('div', 'who');
      who.append(el('div', 'name', c.n ? c.n + ' (' + u + ')' : u), el('div', 'sub', contactSub(u)));
      li.append(who, el('span', 'unread', unreadText(u)));
      li.addEventListener('click', () => open(u));
      ul.append(li);
    }
    $('contacts-empty').hidden = keys.length > 0;
  }

  function unreadText(key) {
    const c = convs.get(key);
    return c && c.unread ? String(c.unread) : '';
  }

  function renderGroups() {
    const ul = $('groups');
    ul.textContent = '';
    for (const g of groups.values()) {
      const li = el('li', g.i === current ? 'current' : '');
      li.dataset.group = g.i;
      li.append(avatar(g.i, g.picture, true));
      const who = el('div', 'who');
      const sub = g.gone ? 'not a member' : g.members && g.members.length ? g.members.length + ' members' : '';
      who.append(el('div', 'name', g.n ? g.n + ' (' + g.i + ')' : g.i), el('div', 'sub', sub));
      li.append(who, el('span', 'unread', unreadText(g.i)));
      li.addEventListener('click', () => open(g.i));
      ul.append(li);
    }
  }

  function renderConvList(key) {
    if (isGroup(key)) renderGroups();
    else renderContacts();
  }

  function renderHead() {
    if (!current) return;
    const group = isGroup(current);
    const g = groups.get(current);
    const c = contacts.get(current);
    const head = $('chat-avatar');
    head.replaceWith(Object.assign(avatar(current, group ? g.picture : c && c.picture, group), { id: 'chat-avatar' }));
    $('chat-name').textContent = displayName(current) + (displayName(current) !== current ? ' (' + current + ')' : '');
    $('chat-pane').dataset.peer = current;
    $('chat-pane').dataset.online = String(!group && online.has(current));
    if (group) {
      $('chat-sub').textContent = g.gone ? 'you are not a member' : 'group';
      $('group-members-list').textContent = g.members && g.members.length ? 'Members: ' + g.members.join(', ') : '';
    } else {
      $('chat-sub').textContent = contacts.has(current) || online.has(current) ? contactSub(current) : 'not followed';
    }
    $('group-tools').hidden = !group || !!g.gone;
    $('leave-group').hidden = !group || !!g.gone;
    $('unfollow').hidden = group || !contacts.has(current);
    $('composer-input').disabled = group && !!g.gone;
    $('send').disabled = group && !!g.gone;
  }

  function renderMessages() {
    const ol = $('messages');
    ol.textContent = '';
    const c = convs.get(current);
    if (!c) return;
    for (const m of c.msgs) appendMessage(m, false);
    ol.scrollTop = ol.scrollHeight;
  }

  function fillMark(li, m) {
    li.dataset.state = m.state;
    const mark = li.querySelector('.mark');
    const who = m.by ? Object.entries(m.by).map(([u, s]) => u + ': ' + s).join(', ') : '';
    const t = {
      pending: ['…', 'sending'], sent: ['✓', 'sent'], delivered: ['✓✓', 'delivered'], read: ['✓✓', 'read'],
      failed: ['!', m.error || 'failed'],
    }[m.state] || ['', ''];
    mark.textContent = t[1] + ' ' + t[0];
    mark.title = who ? t[1] + ' (' + who + ')' : t[1];
    mark.setAttribute('aria-label', t[1]);
  }

  function appendMessage(m, scroll) {
    const ol = $('messages');
    if (m.sys) {
      const li = el('li', 'sys', m.c);
      ol.append(li);
    } else {
      const li = el('li', 'msg' + (m.mine ? ' mine' : ''));
      li.dataset.id = m.id;
      li.dataset.from = m.s;
      if (!m.mine && isGroup(current)) li.append(el('div', 'from', displayName(m.s)));
      li.append(body(m));
      const meta = el('div', 'meta', clock(m.st));
      li.append(meta);
      if (m.mine) {
        meta.append(el('span', 'mark'));
        fillMark(li, m);
      }
      ol.append(li);
    }
    if (scroll) ol.scrollTop = ol.scrollHeight;
  }

  function body(m) {
    const d = el('div', 'text');
    if (m.t === 'p' && safeImage(m.c)) {
      const img = el('img', 'photo');
      img.alt = 'photo';
      img.src = m.c;
      img.referrerPolicy = 'no-referrer';
      d.append(img);
    } else if (m.t === 'l') {
      d.textContent = '📍 ' + m.c;
    } else if ((m.t === 'v' || m.t === 'a' || m.t === 'p') && /^https?:\/\//i.test(m.c)) {
      const a = el('a', '', m.c);
      a.href = m.c;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      d.append(a);
    } else {
      d.textContent = m.c;
    }
    return d;
  }

  // ---- forms ----

  function on(id, type, fn) {
    $(id).addEventListener(type, fn);
  }

  function setup() {
    on('login-form', 'submit', (ev) => {
      ev.preventDefault();
      login($('identity').value.trim(), $('token').value);
    });
    on('logout', 'click', () => toLogin(''));
    on('banner-close', 'click', () => { $('banner').hidden = true; });
    on('back', 'click', () => {
      current = '';
      $('app-view').classList.remove('chat-open');
      $('chat-pane').hidden = true;
      $('chat-empty').hidden = false;
      renderAll();
    });
    on('composer', 'submit', (ev) => {
      ev.preventDefault();
      const text = $('composer-input').value;
      if (!text.trim()) return;
      $('composer-input').value = '';
      sendText(text);
    });
    on('follow-form', 'submit', async (ev) => {
      ev.preventDefault();
      const u = $('follow-user').value.trim().toLowerCase();
      const n = $('follow-nick').value.trim();
      if (!u) return;
      const f = { u };
      if (n) f.n = n;
      try {
        await run({ af: [f] });
      } catch (_) {
        return;
      }
      $('follow-user').value = '';
      $('follow-nick').value = '';
      const old = contacts.get(u) || {};
      contacts.set(u, Object.assign(old, { u, n }));
      renderContacts();
      loadContact(u);
    });
    on('unfollow', 'click', async () => {
      const u = current;
      try {
        await run({ rf: [u] });
      } catch (_) {
        return;
      }
      contacts.delete(u);
      online.delete(u);
      renderContacts();
      renderHead();
    });
    on('status-form', 'submit', async (ev) => {
      ev.preventDefault();
      $('profile-note').textContent = '';
      try {
        await run({ st: { t: 's', s: $('status-input').value } });
      } catch (_) {
        return;
      }
      $('profile-note').textContent = 'Status saved.';
    });
    on('picture-form', 'submit', async (ev) => {
      ev.preventDefault();
      const v = $('picture-input').value.trim();
      $('profile-note').textContent = '';
      try {
        await run({ p: { t: 's', v } });
      } catch (_) {
        return;
      }
      $('profile-note').textContent = 'Picture saved.';
      renderMe(v);
    });
    on('group-form', 'submit', async (ev) => {
      ev.preventDefault();
      const i = $('group-id').value.trim();
      const g = { t: 'c', i };
      const n = $('group-name').value.trim();
      const m = splitNames($('group-members').value.toLowerCase());
      if (n) g.n = n;
      if (m.length) g.m = m;
      try {
        await run({ g });
      } catch (_) {
        return;
      }
      $('group-id').value = $('group-name').value = $('group-members').value = '';
      $('new-group').open = false;
      if (!groups.has(i)) groups.set(i, { i, n, members: [me].concat(m) });
      save();
      renderGroups();
      open(i);
    });
    on('add-member-form', 'submit', async (ev) => {
      ev.preventDefault();
      const m = splitNames($('add-member').value.toLowerCase());
      if (!m.length || !isGroup(current)) return;
      try {
        await run({ g: { t: 'a', i: current, m } });
      } catch (_) {
        return;
      }
      $('add-member').value = '';
      loadGroup(current);
    });
    on('leave-group', 'click', async () => {
      if (!isGroup(current)) return;
      try {
        await run({ g: { t: 'l', i: current } });
      } catch (_) { /* shown */ }
    });
    document.addEventListener('visibilitychange', markCurrentRead);
    window.addEventListener('focus', markCurrentRead);
    window.addEventListener('online', () => client && client.reconnectNow());

    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        const s = JSON.parse(saved);
        $('identity').value = s.i;
        login(s.i, s.t);
      } catch (_) {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
  }

  // For tests and the curious: the live client.
  window.lempgw = { get client() { return client; } };

  setup();
})();
