// An Eclipse Tahu Sparkplug B edge node (npm sparkplug-client) for the interoperability test.
//
// usage: node edge_node.js <mqtt url> <group> <edge node> <device>
//
// It publishes NBIRTH, DBIRTH, NDATA and DDATA with aliases, then an NDATA with an alias its
// births never declared. The host must answer with an NCMD "Node Control/Rebirth"; the node
// then publishes its births again, one more DDATA, a DDEATH, and stops with an NDEATH.
// Progress goes to stdout as one JSON object per line.
"use strict";

const sparkplug = require("sparkplug-client");

const [url, groupId, edgeNode, device] = process.argv.slice(2);
const say = (event, extra) => console.log(JSON.stringify({ event, ...(extra || {}) }));

const client = sparkplug.newClient({
  serverUrl: url,
  username: "",
  password: "",
  groupId,
  edgeNode,
  clientId: `tahu-${edgeNode}`,
  version: "spBv1.0",
  publishDeath: true,
});

function births() {
  client.publishNodeBirth({
    timestamp: Date.now(),
    metrics: [
      { name: "Uptime", alias: 1, type: "Int32", value: 5 },
      { name: "Node Control/Rebirth", type: "Boolean", value: false },
    ],
  });
  client.publishDeviceBirth(device, {
    timestamp: Date.now(),
    metrics: [
      { name: "Spindle/Temperature", alias: 10, type: "Int16", value: 415 },
      { name: "State", alias: 11, type: "String", value: "running" },
      { name: "Parts", alias: 12, type: "UInt32", value: 1200 },
      { name: "Oil Level %", alias: 14, type: "Float", value: 80.5 },
      { name: "Offset", alias: 15, type: "Int8", value: -3 },
    ],
  });
}

let born = false;
let reborn = false;

client.on("birth", () => {
  if (born) return;
  born = true;
  births();
  client.publishNodeData({ timestamp: Date.now(), metrics: [{ alias: 1, type: "Int32", value: 6 }] });
  client.publishDeviceData(device, {
    timestamp: Date.now() + 1,
    metrics: [
      { alias: 10, type: "Int16", value: 433 },
      { alias: 12, type: "UInt32", value: 1250 },
    ],
  });
  client.publishNodeData({ timestamp: Date.now(), metrics: [{ alias: 999, type: "Double", value: 1.5 }] });
  say("sent", { seq: client.seq });
});

client.on("ncmd", (payload) => {
  const rebirth = (payload.metrics || []).find((m) => m.name === "Node Control/Rebirth");
  say("ncmd", { metrics: (payload.metrics || []).map((m) => ({ name: m.name, type: m.type, value: m.value })) });
  if (!rebirth || rebirth.value !== true || reborn) return;
  reborn = true;
  births();
  client.publishDeviceData(device, {
    timestamp: Date.now() + 2,
    metrics: [{ alias: 12, type: "UInt32", value: 1300 }],
  });
  client.publishDeviceDeath(device, { timestamp: Date.now() + 3 });
  // The NDEATH is stamped with the clock: a later millisecond than the births keeps the
  // gateway's status history in order (a store keys statuses by time).
  setTimeout(() => {
    client.stop();
    say("done", { seq: client.seq, bdSeq: client.bdSeq });
  }, 5);
});

client.on("error", (err) => {
  say("error", { message: String(err) });
  process.exit(2);
});

client.on("close", () => {
  if (reborn) process.exit(0);
});
