// Two globals that the pinned js-libp2p 2.x tree uses but older Node.js
// releases lack, defined here (as the standards specify) only where absent;
// dial.mjs imports this module before any other. With them the script runs
// on the machine's Node.js 20 and on Debian bookworm's Node.js 18 (what
// .ci/run installs where Node.js is missing).
//
// - Promise.withResolvers (ES2024, Node.js 22): it-queue calls it, through
//   mortice, through @libp2p/peer-store.
// - CustomEvent as a global (Node.js 19): libp2p's events.

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}

if (typeof globalThis.CustomEvent !== 'function') {
  globalThis.CustomEvent = class CustomEvent extends Event {
    #detail

    constructor (type, options = {}) {
      super(type, options)
      this.#detail = options?.detail ?? null
    }

    get detail () {
      return this.#detail
    }
  }
}
