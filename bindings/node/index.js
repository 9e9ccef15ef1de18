// headway for Node and Electron: loads the Node-API addon (headway.node, built from
// bindings/node/src by `napi build`) and gives its errors their class. Every rule lives in the
// Rust library; this file only turns the addon's errors into `HeadwayError`s, a player event
// object into its JSON text, and guards listeners.
'use strict'

const native = require('./headway.node')

/** The codes a `HeadwayError` can carry (one per variant of the FFI's `HeadwayError`). */
const CODES = new Set([
  'INVALID_INPUT',
  'CORRUPT_STORE',
  'STORE_UNAVAILABLE',
  'SERVER_UNAVAILABLE',
  'CREDENTIALS_REFUSED',
  'REFUSED_PEER_DATA',
  'NOT_PAIRED',
  'STORAGE',
  'INTERNAL',
])

/** The addon marks its code at the start of an error's message: `\u0001CODE\u0001message`. */
const MARK = '\u0001'

/**
 * Node-API's own argument conversion failures (a string where a number belongs, a missing
 * field): the caller's input was refused before headway saw it.
 */
const ARGUMENT_CODES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
])

class HeadwayError extends Error {
  constructor(code, message) {
    super(message)
    this.name = 'HeadwayError'
    this.code = code
  }
}

/** The `HeadwayError` an error from the addon stands for. */
function headwayError(error) {
  if (error instanceof HeadwayError || !(error instanceof Error)) {
    return error
  }
  const message = String(error.message)
  if (message.startsWith(MARK)) {
    const end = message.indexOf(MARK, 1)
    const code = message.slice(1, end)
    if (end > 0 && CODES.has(code)) {
      return new HeadwayError(code, message.slice(end + 1))
    }
  }
  if (ARGUMENT_CODES.has(error.code) || error instanceof TypeError) {
    return new HeadwayError('INVALID_INPUT', message)
  }
  return new HeadwayError('INTERNAL', message)
}

function rethrow(error) {
  throw headwayError(error)
}

/** `call`, with the addon's errors (thrown or rejected) as `HeadwayError`s. */
function guarded(call) {
  return function (...args) {
    let result
    try {
      result = call.apply(this, args)
    } catch (error) {
      rethrow(error)
    }
    return result instanceof Promise ? result.then(undefined, rethrow) : result
  }
}

// The addon's class, under a constructor of our own: its static methods cannot be redefined.
// Stores come from `Store.open` and `Store.openInMemory`; `instanceof Store` holds for them.
const NativeStore = native.Store
function Store() {
  throw new HeadwayError('INVALID_INPUT', 'a store comes from Store.open(path) or Store.openInMemory()')
}
Store.prototype = NativeStore.prototype
Store.open = guarded((path, options) => NativeStore.open(path, options))
Store.openInMemory = guarded(() => NativeStore.openInMemory())
for (const name of Object.getOwnPropertyNames(Store.prototype)) {
  const descriptor = Object.getOwnPropertyDescriptor(Store.prototype, name)
  if (name !== 'constructor' && typeof descriptor.value === 'function') {
    Object.defineProperty(Store.prototype, name, { ...descriptor, value: guarded(descriptor.value) })
  }
}

const recordPlayerEvent = Store.prototype.recordPlayerEvent
Object.defineProperty(Store.prototype, 'recordPlayerEvent', {
  ...Object.getOwnPropertyDescriptor(Store.prototype, 'recordPlayerEvent'),
  value: function (event, context) {
    if (typeof event !== 'string') {
      if (event === null || typeof event !== 'object') {
        throw new HeadwayError('INVALID_INPUT', 'a player event is a JSON string or an object')
      }
      try {
        event = JSON.stringify(event)
      } catch (error) {
        throw new HeadwayError('INVALID_INPUT', `the player event is not JSON: ${error.message}`)
      }
    }
    return recordPlayerEvent.call(this, event, context)
  },
})

const subscribe = Store.prototype.subscribe
Object.defineProperty(Store.prototype, 'subscribe', {
  ...Object.getOwnPropertyDescriptor(Store.prototype, 'subscribe'),
  value: function (listener) {
    if (typeof listener !== 'function') {
      throw new HeadwayError('INVALID_INPUT', 'a listener is a function')
    }
    // Events already queued when the app unsubscribes are not delivered; a listener that
    // throws does not stop the next events (the error is reported as a process warning).
    let listening = true
    const unsubscribe = subscribe.call(this, (event) => {
      if (!listening) return
      try {
        listener(event)
      } catch (error) {
        process.emitWarning(error instanceof Error ? error : String(error), {
          type: 'HeadwayListenerWarning',
          detail: 'a headway listener threw; the next events are still delivered',
        })
      }
    })
    return function unsubscribeListener() {
      listening = false
      unsubscribe()
    }
  },
})

// Named one by one so that ESM's `import { Store } from "headway"` finds them.
exports.Store = Store
exports.Status = native.Status
exports.HeadwayError = HeadwayError
