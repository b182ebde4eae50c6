// A worker thread of the embedded backend's onnxruntime pool. It holds any number of sessions (one per
// model instance placed on it) and runs them one at a time, so the event loop serving gRPC stays responsive
// while a model runs (onnxruntime-node's run() is synchronous on the calling thread). Plain JavaScript on
// purpose: worker threads do not inherit the TypeScript loader.
//
// In:  { type: "load", id, sid, path, options } | { type: "run", id, sid, feeds: { name: { type, dims, data } },
//      fetches: [name], donated?: [name] } | { type: "release", id, sid }
// Out: { type: "ok", id, inputs?, outputs? } | { type: "error", id, message, returned? }
// A failed run hands the buffers of its donated feeds back (`returned`), so the caller keeps its state.

import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";

const sessions = new Map();

function meta(list) {
  return list.map((m) => ({
    name: m.name,
    isTensor: m.isTensor,
    type: m.isTensor ? m.type : undefined,
    shape: m.isTensor ? Array.from(m.shape) : [],
  }));
}

function ownsBuffer(v) {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && !(v.buffer instanceof SharedArrayBuffer);
}

parentPort.on("message", async (msg) => {
  try {
    if (msg.type === "load") {
      const session = await ort.InferenceSession.create(msg.path, msg.options);
      sessions.set(msg.sid, session);
      parentPort.postMessage({ type: "ok", id: msg.id, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
    } else if (msg.type === "run") {
      const session = sessions.get(msg.sid);
      if (!session) throw new Error(`session ${msg.sid} is not loaded`);
      const feeds = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const result = await session.run(feeds, msg.fetches);
      const outputs = {};
      const transfer = [];
      for (const name of msg.fetches) {
        const t = result[name];
        let data = t.data;
        if (ArrayBuffer.isView(data)) {
          if (!ownsBuffer(data)) data = data.slice();
          transfer.push(data.buffer);
        }
        outputs[name] = { type: t.type, dims: Array.from(t.dims), data };
      }
      parentPort.postMessage({ type: "ok", id: msg.id, outputs }, transfer);
    } else if (msg.type === "release") {
      const session = sessions.get(msg.sid);
      sessions.delete(msg.sid);
      if (session) await session.release();
      parentPort.postMessage({ type: "ok", id: msg.id });
    }
  } catch (e) {
    const returned = {};
    for (const name of msg.donated ?? []) {
      const data = msg.feeds?.[name]?.data;
      if (ArrayBuffer.isView(data)) returned[name] = data.buffer;
    }
    parentPort.postMessage({ type: "error", id: msg.id, message: e instanceof Error ? e.message : String(e), returned }, Object.values(returned));
  }
});
