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

/** The methods that answer a Promise: they reject, never throw, whatever the input. */
const ASYNC_METHODS = new Set(['sync', 'refreshCourses'])

/** `call`, with the addon's errors (thrown or rejected) as `HeadwayError`s. */
function guarded(call, answersPromise = false) {
  return function (...args) {
    let result
    try {
      result = call.apply(this, args)
    } catch (error) {
      if (answersPromise) return Promise.reject(headwayError(error))
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
Store.open = guarded((path, options) => {
  if (options !== undefined && options !== null && typeof options !== 'object') {
    throw new HeadwayError('INVALID_INPUT', 'Store.open takes an options object: { durability }')
  }
  return NativeStore.open(path, options)
})
Store.openInMemory = guarded(() => NativeStore.openInMemory())
for (const name of Object.getOwnPropertyNames(Store.prototype)) {
  const descriptor = Object.getOwnPropertyDescriptor(Store.prototype, name)
  if (name !== 'constructor' && typeof descriptor.value === 'function') {
    const value = guarded(descriptor.value, ASYNC_METHODS.has(name))
    Object.defineProperty(Store.prototype, name, { ...descriptor, value })
  }
}

// Many items cross the boundary packed (src/packed.rs): a few values instead of one object
// built through Node-API per item. The objects are made here, by object literals.
const SEPARATOR = '\u0000'

/** The addon's packed items as `ContentItem` objects. */
function unpackItems([userId, contentIds, runCourses, runBatches, runLengths, numbers]) {
  const count = numbers.length / 4
  const ids = count === 0 ? [] : contentIds.split(SEPARATOR)
  if (ids.length !== count) {
    // Only a NUL inside a stored id splits wrong, and the library refuses such ids.
    throw new HeadwayError('CORRUPT_STORE', `the store holds a content id with a NUL (${ids.length} ids for ${count} items)`)
  }
  const items = new Array(count)
  let at = 0
  for (let run = 0; run < runLengths.length; run++) {
    const courseId = runCourses[run]
    const batchId = runBatches[run]
    for (const end = at + runLengths[run]; at < end; at++) {
      const lastAccess = numbers[4 * at + 2]
      const lastCompleted = numbers[4 * at + 3]
      items[at] = {
        userId,
        courseId,
        batchId,
        contentId: ids[at],
        status: numbers[4 * at],
        progress: numbers[4 * at + 1],
        lastAccessTimeMs: Number.isNaN(lastAccess) ? null : lastAccess,
        lastCompletedTimeMs: Number.isNaN(lastCompleted) ? null : lastCompleted,
      }
    }
  }
  return items
}

const ID_FIELDS = ['userId', 'courseId', 'batchId', 'contentId']

/** `updates` packed for the addon; a value of the wrong type is refused naming its update. */
function packUpdates(updates) {
  if (!Array.isArray(updates)) {
    throw new HeadwayError('INVALID_INPUT', 'recordBatch takes an array of updates')
  }
  const count = updates.length
  const ids = ID_FIELDS.map(() => new Array(count))
  const numbers = new Float64Array(3 * count)
  const refuse = (at, what) => {
    throw new HeadwayError('INVALID_INPUT', `update ${at}: ${what}`)
  }
  for (let at = 0; at < count; at++) {
    const update = updates[at]
    if (update === null || typeof update !== 'object') refuse(at, 'an update is an object')
    for (let field = 0; field < 4; field++) {
      const value = update[ID_FIELDS[field]]
      if (typeof value !== 'string') refuse(at, `"${ID_FIELDS[field]}" must be a string, got ${typeof value}`)
      // NUL separates the packed ids (and no id may hold a control character).
      if (value.includes(SEPARATOR)) refuse(at, `"${ID_FIELDS[field]}" holds a control character (NUL)`)
      ids[field][at] = value
    }
    const { status, progress, consumedAtMs } = update
    if (typeof status !== 'number') refuse(at, `"status" must be a number, got ${typeof status}`)
    if (typeof progress !== 'number') refuse(at, `"progress" must be a number, got ${typeof progress}`)
    numbers[3 * at] = status
    numbers[3 * at + 1] = progress
    if (consumedAtMs === undefined || consumedAtMs === null) {
      numbers[3 * at + 2] = NaN
    } else if (typeof consumedAtMs !== 'number' || Number.isNaN(consumedAtMs)) {
      refuse(at, `"consumedAtMs" must be a number of ms or null, got ${String(consumedAtMs)}`)
    } else {
      numbers[3 * at + 2] = consumedAtMs
    }
  }
  return [count, ...ids.map((field) => field.join(SEPARATOR)), numbers]
}

for (const name of ['state', 'pending']) {
  const read = Store.prototype[name]
  Object.defineProperty(Store.prototype, name, {
    ...Object.getOwnPropertyDescriptor(Store.prototype, name),
    value: function (...args) {
      return unpackItems(read.apply(this, args))
    },
  })
}

const recordBatch = Store.prototype.recordBatch
Object.defineProperty(Store.prototype, 'recordBatch', {
  ...Object.getOwnPropertyDescriptor(Store.prototype, 'recordBatch'),
  value: guarded(function (updates) {
    return recordBatch.call(this, packUpdates(updates))
  }),
})

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

// A store with a listener or a background sync is kept from the garbage collector until it
// is closed (or, for a background sync alone, stopped): a store the app dropped would
// otherwise stop syncing and go quiet at the next collection. This does not keep the event
// loop alive.
const working = new Set()
/** Per store, the listeners' states: `close` silences them at once. */
const listenersOf = new WeakMap()
const backgroundOf = new WeakSet()

const subscribe = Store.prototype.subscribe
Object.defineProperty(Store.prototype, 'subscribe', {
  ...Object.getOwnPropertyDescriptor(Store.prototype, 'subscribe'),
  value: function (listener) {
    if (typeof listener !== 'function') {
      throw new HeadwayError('INVALID_INPUT', 'a listener is a function')
    }
    // Events already queued when the app unsubscribes (or closes) are not delivered; a
    // listener that throws does not stop the next events (its error is a process warning).
    const state = { listening: true }
    const store = this
    const unsubscribe = subscribe.call(this, (event) => {
      if (!state.listening) return
      try {
        listener(event)
      } catch (error) {
        // A message, not the Error itself: Node ignores `type` for an Error.
        process.emitWarning(error instanceof Error ? error.message : String(error), {
          type: 'HeadwayListenerWarning',
          detail: `a headway listener threw; the next events are still delivered${
            error instanceof Error && error.stack ? `\n${error.stack}` : ''
          }`,
        })
      }
    })
    if (!listenersOf.has(store)) listenersOf.set(store, new Set())
    listenersOf.get(store).add(state)
    working.add(store)
    return function unsubscribeListener() {
      state.listening = false
      unsubscribe()
      const states = listenersOf.get(store)
      states?.delete(state)
      if (!states?.size && !backgroundOf.has(store)) working.delete(store)
    }
  },
})

for (const name of ['startBackgroundSync', 'stopBackgroundSync', 'close']) {
  const call = Store.prototype[name]
  Object.defineProperty(Store.prototype, name, {
    ...Object.getOwnPropertyDescriptor(Store.prototype, name),
    value: function (...args) {
      const answer = call.apply(this, args)
      if (name === 'startBackgroundSync') {
        backgroundOf.add(this)
        working.add(this)
        return answer
      }
      backgroundOf.delete(this)
      if (name === 'close') {
        for (const state of listenersOf.get(this) ?? []) state.listening = false
        listenersOf.delete(this)
      }
      if (!listenersOf.get(this)?.size) working.delete(this)
      return answer
    },
  })
}

// Named one by one so that ESM's `import { Store } from "headway"` finds them.
exports.Store = Store
// Numeric enums of TypeScript map both ways (`Status[2] === "Completed"`); napi-rs's object
// maps names to numbers only.
for (const [name, value] of Object.entries(native.Status)) {
  if (typeof value === 'number') native.Status[value] = name
}
exports.Status = native.Status
exports.HeadwayError = HeadwayError
