'use strict';
// LempClient: one LEMP session over a websocket, as docs/protocol.md
// describes it. It logs in, matches responses to requests by id, keeps the
// messages it sent until their server receipt (sr) or error arrives and sends
// them again (same id: the server de-duplicates) after a reconnect, and
// reconnects with backoff when the connection drops for any reason other than
// a logout, a login elsewhere (4409) or a deleted account (4404).
//
// Events (CustomEvent, the payload in detail):
//   state    {state: 'connecting'|'online'|'reconnecting'|'offline', retryIn?}
//   loggedin {}                      after every successful login, reconnects too
//   message  {m}                     an incoming message (not a receipt)
//   sent     {id}                    sr for one of our messages
//   receipt  {kind: 'dm'|'nm', id, from, st}
//   msgerror {id, e}                 a message or receipt was refused
//   presence {user, online}          i.li / i.lo
//   group    {g}                     i.g event
//   error    {e}                     an error that answers no request of ours
//   closed   {code, reason, final}   the socket closed; final: no reconnect
(function () {
  const RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
  const REQUEST_TIMEOUT_MS = 15000;

  class LempError extends Error {
    constructor(e) {
      super((e && e.d) || 'error');
      this.code = e && e.c;
    }
  }

  // randomID is a message or request id no other client picks: 16 random
  // bytes in hex (crypto.randomUUID needs a secure context).
  function randomID() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  class LempClient extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.ws = null;
      this.identity = '';
      this.token = '';
      this.loggedIn = false;
      this.wanted = false; // the user wants a session (reconnect when it drops)
      this.pending = new Map(); // request id -> {resolve, reject, timer}
      this.outbox = new Map(); // message id -> m, until sr or e
      this.seq = 0;
      this.attempt = 0;
      this.retryTimer = 0;
      this.state = 'offline';
    }

    emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail: detail || {} }));
    }

    setState(state, extra) {
      this.state = state;
      this.emit('state', Object.assign({ state }, extra || {}));
    }

    // login opens a connection and logs in; it resolves once the server
    // answered response:1 and rejects with the server's error otherwise.
    login(identity, token) {
      this.identity = identity;
      this.token = token;
      this.wanted = true;
      this.fresh = true; // no session yet: a failure goes back to the caller
      this.attempt = 0;
      return this.connect();
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.closeSocket();
      this.setState('connecting');
      return new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new WebSocket(this.url);
        } catch (err) {
          this.wanted = false;
          this.setState('offline');
          reject(err);
          return;
        }
        this.ws = ws;
        let settled = false;
        const fail = (err) => {
          if (!settled) {
            settled = true;
            reject(err);
          }
        };
        ws.onopen = () => {
          this.request({ a: { i: this.identity, t: this.token } }).then((rp) => {
            if (rp.response !== 1) {
              // Refused: the token is wrong or the account is gone. That is
              // final; retrying would not help.
              const err = new LempError(rp.e || { c: 401, d: 'login refused' });
              const wasFresh = this.fresh;
              this.wanted = false;
              this.closeSocket();
              this.setState('offline');
              if (!wasFresh) {
                this.emit('closed', { code: err.code, reason: err.message, final: true });
              }
              fail(err);
              return;
            }
            this.loggedIn = true;
            this.fresh = false;
            this.attempt = 0;
            this.setState('online');
            for (const m of this.outbox.values()) {
              this.write({ m });
            }
            this.emit('loggedin');
            settled = true;
            resolve();
          }, () => { /* the socket closed first: onclose handles it */ });
        };
        ws.onmessage = (ev) => this.onFrame(ev.data);
        ws.onclose = (ev) => {
          if (this.ws !== ws) {
            return; // an older socket
          }
          if (this.fresh) {
            this.wanted = false; // the first login failed: tell the caller, no retries
          }
          this.onClose(ev.code, ev.reason);
          fail(new LempError({ c: ev.code, d: ev.reason || 'cannot reach the server' }));
        };
      });
    }

    closeSocket() {
      const ws = this.ws;
      this.ws = null;
      this.loggedIn = false;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = null;
        try { ws.close(); } catch (_) { /* already closed */ }
      }
      this.failPending('connection closed');
    }

    failPending(why) {
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new LempError({ c: 0, d: why }));
      }
      this.pending.clear();
    }

    onClose(code, reason) {
      this.ws = null;
      this.loggedIn = false;
      this.failPending('connection closed');
      // 1000 after our logout; 4409 logged in elsewhere; 4404 account
      // deleted: the session is over.
      const final = !this.wanted || code === 4409 || code === 4404 || code === 1000;
      this.emit('closed', { code, reason, final });
      if (final) {
        this.wanted = false;
        this.setState('offline');
        return;
      }
      const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
      const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
      this.attempt++;
      this.setState('reconnecting', { retryIn: jittered });
      this.retryTimer = setTimeout(() => {
        if (this.wanted) {
          this.connect().catch(() => { /* onClose schedules the next try */ });
        }
      }, jittered);
    }

    // reconnectNow skips the backoff wait (the browser came back online).
    reconnectNow() {
      if (this.wanted && this.state === 'reconnecting') {
        this.connect().catch(() => {});
      }
    }

    logout() {
      this.wanted = false;
      clearTimeout(this.retryTimer);
      if (this.ws && this.loggedIn) {
        this.write({ rq: { id: this.nextID(), lo: { r: 'bye' } } });
        // The server closes with 1000 once it wrote what it had queued.
        const ws = this.ws;
        setTimeout(() => {
          if (this.ws === ws) {
            this.closeSocket();
            this.setState('offline');
          }
        }, 2000);
      } else {
        this.closeSocket();
        this.setState('offline');
      }
      this.outbox.clear();
    }

    nextID() {
      this.seq++;
      return 'r' + this.seq;
    }

    write(frame) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        return false;
      }
      this.ws.send(JSON.stringify(frame));
      return true;
    }

    // request sends {rq: op} and resolves with the rp (rejects with a
    // LempError for an rp that carries e).
    request(op) {
      return this.call('rq', op);
    }

    // serverRequest sends {srq: {t}} and resolves with the srp.
    serverRequest(t) {
      return this.call('srq', { t });
    }

    call(kind, body) {
      return new Promise((resolve, reject) => {
        const id = this.nextID();
        if (!this.write({ [kind]: Object.assign({ id }, body) })) {
          reject(new LempError({ c: 0, d: 'not connected' }));
          return;
        }
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new LempError({ c: 0, d: 'no answer from the server' }));
        }, REQUEST_TIMEOUT_MS);
        this.pending.set(id, { resolve, reject, timer, kind });
      });
    }

    // send queues a message {id, r, t, c}; it is written now when online and
    // again after each reconnect until its sr or error arrives.
    send(m) {
      const msg = Object.assign({ id: randomID(), t: 't' }, m);
      this.outbox.set(msg.id, msg);
      if (this.loggedIn) {
        this.write({ m: msg });
      }
      return msg;
    }

    // receipt sends dm or nm for a received message id; false when offline
    // (the server sends the message again at the next login).
    receipt(kind, id) {
      if (!this.loggedIn) {
        return false;
      }
      return this.write({ m: { id: randomID(), st: Date.now(), [kind]: { id } } });
    }

    onFrame(data) {
      let f;
      try {
        f = JSON.parse(data);
      } catch (_) {
        this.emit('error', { e: { c: 0, d: 'the server sent a frame that is not JSON' } });
        return;
      }
      if (f.rp || f.srp) {
        const rp = f.rp || f.srp;
        const p = rp.id !== undefined ? this.pending.get(rp.id) : undefined;
        if (p) {
          this.pending.delete(rp.id);
          clearTimeout(p.timer);
          // A failed login answers with response:0 and e: let login read it.
          if (rp.e && rp.response === undefined) {
            p.reject(new LempError(rp.e));
          } else {
            if (f.o !== undefined) rp.o = f.o;
            p.resolve(rp);
          }
        } else if (rp.e) {
          this.emit('error', { e: rp.e });
        }
        return;
      }
      if (f.m) {
        const m = f.m;
        if (m.e) {
          if (m.id !== undefined) this.outbox.delete(m.id);
          this.emit('msgerror', { id: m.id, e: m.e });
        } else if (m.sr) {
          this.outbox.delete(m.sr.id);
          this.emit('sent', { id: m.sr.id });
        } else if (m.dm || m.nm) {
          const kind = m.dm ? 'dm' : 'nm';
          this.emit('receipt', { kind, id: m[kind].id, from: m.s, st: m.st });
        } else {
          this.emit('message', { m });
        }
        return;
      }
      if (f.i) {
        if (f.i.li !== undefined) this.emit('presence', { user: f.i.li, online: true });
        if (f.i.lo !== undefined) this.emit('presence', { user: f.i.lo, online: false });
        if (f.i.g) this.emit('group', { g: f.i.g });
      }
    }
  }

  window.LempClient = LempClient;
  window.LempError = LempError;
})();
