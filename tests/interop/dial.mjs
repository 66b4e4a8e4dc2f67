#!/usr/bin/env node
// A js-libp2p node that dials a dxmesh node with a given Ed25519 key:
// TCP + noise + yamux, then identify and ping, as any third-party libp2p
// implementation would. tests/tests/interop.rs runs it with a roster
// member's key (identify and ping succeed) and with an unknown key (the
// node refuses the connection at setup: this script never identifies).
//
// Usage: node dial.mjs <multiaddr with /p2p/<peer id>> <seed hex>
//   (or DXMESH_ADDR and DXMESH_SEED in the environment); the seed is the
//   32-byte Ed25519 seed of the key, as 64 hex digits.
//   DXMESH_TIMEOUT_MS bounds the whole run (default 15000).
//
// Prints one JSON line and exits 0 on success:
//   {"identified":true,"peer_id":...,"remote":...,"protocol_version":"/dxmesh/id/1",
//    "protocols":[...],"agent":"dxmesh/...","rtt_ms":...}
// On failure, prints {"identified":false,"stage":...,"error":...} and exits 1
// (2 for bad arguments).

import './compat.mjs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

/** The identify protocol version a dxmesh node announces. */
const DXMESH_IDENTIFY = '/dxmesh/id/1'
/** The control protocol every dxmesh node supports. */
const DXMESH_CONTROL = '/dxmesh/control/1'

function report (result, code) {
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exitCode = code
}

function fail (stage, error, extra = {}) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return { identified: false, stage, error: message, ...extra }
}

async function main () {
  const addrText = process.argv[2] ?? process.env.DXMESH_ADDR
  const seedHex = process.argv[3] ?? process.env.DXMESH_SEED
  const timeoutMs = Number(process.env.DXMESH_TIMEOUT_MS ?? 15000)
  if (addrText == null || seedHex == null) {
    return [fail('args', 'usage: node dial.mjs <multiaddr/p2p/<peer id>> <32-byte seed hex>'), 2]
  }
  if (!/^[0-9a-fA-F]{64}$/.test(seedHex)) {
    return [fail('args', 'the seed must be 64 hex digits (a 32-byte Ed25519 seed)'), 2]
  }
  let addr
  try {
    addr = multiaddr(addrText)
  } catch (e) {
    return [fail('args', e), 2]
  }
  const remote = addr.getPeerId()
  if (remote == null) {
    return [fail('args', `the address ${addrText} has no /p2p/<peer id>`), 2]
  }

  const privateKey = await generateKeyPairFromSeed('Ed25519', Buffer.from(seedHex, 'hex'))
  const self = peerIdFromPrivateKey(privateKey).toString()
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })

  const deadline = AbortSignal.timeout(timeoutMs)
  // Both listeners are in place before the dial: identify runs as soon as
  // the connection opens, and a refusing node closes it right away.
  const identified = new Promise((resolve, reject) => {
    node.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() === remote) resolve(evt.detail)
    })
    node.addEventListener('connection:close', (evt) => {
      if (evt.detail.remotePeer.toString() === remote) {
        reject(new Error('the remote closed the connection before identify completed'))
      }
    })
    deadline.addEventListener('abort', () => reject(new Error(`no identify within ${timeoutMs} ms`)))
  })
  identified.catch(() => {})

  try {
    let stage = 'dial'
    try {
      await node.dial(addr, { signal: deadline })
      stage = 'identify'
      const info = await identified
      const protocols = [...info.protocols].sort()
      const seen = {
        peer_id: self,
        remote,
        protocol_version: info.protocolVersion ?? null,
        protocols,
        agent: info.agentVersion ?? null
      }
      if (info.protocolVersion !== DXMESH_IDENTIFY) {
        return [fail(stage, `the remote's protocol version is ${info.protocolVersion}, not ${DXMESH_IDENTIFY}`, seen), 1]
      }
      if (!protocols.includes(DXMESH_CONTROL)) {
        return [fail(stage, `the remote does not list ${DXMESH_CONTROL}`, seen), 1]
      }
      stage = 'ping'
      const rtt = await node.services.ping.ping(info.peerId, { signal: deadline })
      return [{ identified: true, ...seen, rtt_ms: rtt }, 0]
    } catch (e) {
      return [fail(stage, e, { peer_id: self, remote }), 1]
    }
  } finally {
    await node.stop().catch(() => {})
  }
}

main().then(
  ([result, code]) => report(result, code),
  (e) => report(fail('setup', e), 1)
).finally(() => {
  // Nothing of the libp2p node may keep the process alive past the report.
  setTimeout(() => process.exit(), 100).unref()
})
