#!/usr/bin/env node
// A peer for Tether's interop tests: Node's `ws` server on 127.0.0.1.
//
//   node ws_server.js PORT MODE [COMPRESSION]
//       (PORT 0: a free port; the chosen port is stdout's first line)
//
// MODE (the same for websockets_server.py):
//   echo              echoes every message, text as text, binary as binary
//   ping:N            also pings every N ms and times the pongs
//   close:CODE:K      closes the first connection with CODE after K messages; later ones echo
//   jsonrpc           a JSON-RPC 2.0 server (see jsonrpcAnswer): methods echo, add, slow (answers after
//                     params[0] ms, other requests meanwhile); says {"method":"hello"} first
// COMPRESSION (permessage-deflate, when the client offers it):
//   default           ws's default for servers: off (the offer is declined)
//   plain             off
//   deflate           on, every message compressed (threshold 0), context takeover
//   nct               on, without context takeover in either direction (imposed on the client)
// In every mode the text message "stats?" is answered with
//   "stats conns=C pings=P pongs=Q max_pong_ms=M deflate=D wire_in=I wire_out=O"
// (counts over the server's life; D is 1 when this connection negotiated permessage-deflate; I and O
// are the bytes this connection read and wrote on the wire so far).
'use strict';
const { WebSocketServer } = require('ws');

const [portArg, mode = 'echo', compression = 'default'] = process.argv.slice(2);
const [kind, a, b] = mode.split(':');
if (!['echo', 'ping', 'close', 'jsonrpc'].includes(kind) || portArg === undefined) {
  console.error('usage: ws_server.js PORT echo|ping:N|close:CODE:K|jsonrpc');
  process.exit(2);
}
const stats = { conns: 0, pings: 0, pongs: 0, maxPongMs: 0 };
const deflate = {
  default: false,
  plain: false,
  deflate: { threshold: 0 },
  nct: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
}[compression];
if (deflate === undefined) {
  console.error(`unknown compression ${compression}`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(portArg),
  maxPayload: 64 << 20,
  perMessageDeflate: deflate,
});
wss.on('listening', () => console.log(String(wss.address().port)));
// Answers one JSON-RPC 2.0 request (notifications, without an id, get no answer).
function jsonrpcAnswer(ws, text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (e) {
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
    return;
  }
  if (!('id' in req)) return;
  const params = req.params || [];
  const send = (answer) => ws.send(JSON.stringify(Object.assign({ jsonrpc: '2.0', id: req.id }, answer)));
  if (req.method === 'echo') send({ result: params });
  else if (req.method === 'add') send({ result: params.reduce((a, b) => a + b, 0) });
  else if (req.method === 'slow') setTimeout(() => send({ result: 'done' }), params[0]);
  else send({ error: { code: -32601, message: 'Method not found' } });
}

wss.on('connection', (ws) => {
  const conn = ++stats.conns;
  if (kind === 'jsonrpc') {
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'hello', params: { conn } }));
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text === 'stats?') {
        ws.send(`stats conns=${stats.conns} pings=${stats.pings} pongs=${stats.pongs} max_pong_ms=${stats.maxPongMs}`);
        return;
      }
      jsonrpcAnswer(ws, text);
    });
    return;
  }
  let received = 0;
  let timer = null;
  if (kind === 'ping') {
    let sentAt = null;
    ws.on('pong', () => {
      if (sentAt !== null) {
        stats.pongs++;
        stats.maxPongMs = Math.max(stats.maxPongMs, Date.now() - sentAt);
        sentAt = null;
      }
    });
    timer = setInterval(() => {
      if (sentAt !== null) return; // one outstanding ping at a time
      sentAt = Date.now();
      stats.pings++;
      ws.ping(Buffer.from('p' + stats.pings));
    }, Number(a));
  }
  ws.on('close', () => timer && clearInterval(timer));
  ws.on('message', (data, isBinary) => {
    received++;
    if (!isBinary && data.toString() === 'stats?') {
      const negotiated = ws.extensions.includes('permessage-deflate') ? 1 : 0;
      ws.send(
        `stats conns=${stats.conns} pings=${stats.pings} pongs=${stats.pongs} max_pong_ms=${stats.maxPongMs}` +
          ` deflate=${negotiated} wire_in=${ws._socket.bytesRead} wire_out=${ws._socket.bytesWritten}`,
      );
      return;
    }
    ws.send(data, { binary: isBinary });
    if (kind === 'close' && conn === 1 && received >= Number(b)) {
      ws.close(Number(a), 'interop close');
    }
  });
});
process.on('SIGTERM', () => process.exit(0));
