// A tiny TCP proxy in front of a live server that misbehaves on purpose (the
// Node.js twin of tests/flaky_proxy.py).
//
// Connection n follows script[n]; once the script is used up it forwards.
// - "forward": relay the request and the whole answer.
// - "drop": relay the request, wait for the server's whole answer, then close
//   the client's connection without a byte: the answer is lost in transit.
// - "stall": like "drop", but hold the connection open until the client gives up.
// - a Buffer: answer those bytes (see `answer`) without reaching the server.
// Every request is recorded as {method, target, headers, body}.
import { connect, createServer } from "node:net";

const HOST = "127.0.0.1";

/** A canned HTTP/1.1 answer: JSON `payload`, or `{ text }` as HTML; `headers` added. */
export function answer(status, payload, headers = {}) {
  const isText = payload !== null && typeof payload === "object" && "text" in payload && Object.keys(payload).length === 1;
  const body = Buffer.from(isText ? payload.text : JSON.stringify(payload));
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  const head = `HTTP/1.1 ${status} Canned\r\nContent-Type: ${isText ? "text/html" : "application/json"}\r\n`
    + `Content-Length: ${body.length}\r\n${extra}Connection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
}

export class FlakyProxy {
  static async start(upstreamPort, script = []) {
    const proxy = new FlakyProxy(upstreamPort, script);
    await new Promise((resolve) => proxy.server.listen(0, HOST, resolve));
    proxy.url = `http://${HOST}:${proxy.server.address().port}`;
    return proxy;
  }

  constructor(upstreamPort, script) {
    this.upstreamPort = upstreamPort;
    this.script = [...script];
    this.requests = [];
    this.sockets = new Set();
    this.server = createServer((socket) => this.#serve(socket));
  }

  #serve(client) {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => {});
    let data = Buffer.alloc(0);
    const onData = (chunk) => {
      data = Buffer.concat([data, chunk]);
      const request = complete(data);
      if (request === null) return;
      client.off("data", onData);
      this.requests.push(parse(request));
      const action = this.script.length ? this.script.shift() : "forward";
      if (Buffer.isBuffer(action)) {
        client.end(action);
        return;
      }
      const upstream = connect(this.upstreamPort, HOST, () => upstream.write(request));
      const response = [];
      upstream.on("data", (chunk) => response.push(chunk));
      upstream.on("error", () => client.destroy());
      upstream.on("end", () => {
        if (action === "forward") client.end(Buffer.concat(response));
        else if (action === "drop") client.destroy();
        // "stall": say nothing; the client's timeout ends it
      });
    };
    client.on("data", onData);
  }

  async close() {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The request if `data` holds all of it (head and Content-Length body), else null. */
function complete(data) {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const match = /\r\ncontent-length:\s*(\d+)/i.exec(data.subarray(0, end).toString("latin1"));
  const length = match ? Number(match[1]) : 0;
  return data.length >= end + 4 + length ? data.subarray(0, end + 4 + length) : null;
}

function parse(request) {
  const end = request.indexOf("\r\n\r\n");
  const [line, ...lines] = request.subarray(0, end).toString("latin1").split("\r\n");
  const [method, target] = line.split(" ");
  const headers = {};
  for (const header of lines) {
    const colon = header.indexOf(":");
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  return { method, target, headers, body: request.subarray(end + 4).toString("utf8") };
}
