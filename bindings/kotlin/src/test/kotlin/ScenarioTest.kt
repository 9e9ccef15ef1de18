// The design note's scenario, from Kotlin on the JVM, against `headway serve` on 127.0.0.1: a
// learner's phone records progress offline, its course list moves offline, a stale update rolls
// nothing back, one bulk sync sends everything, the tablet's refresh sees it, events reach the
// listener, two devices converge through a file, and bad input or a damaged file raise typed
// errors that change nothing. A small runner: each test is a function named after what it
// proves; the process exits 1 if any fails.

import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.system.exitProcess
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import uniffi.headway.ContentItem
import uniffi.headway.CourseContext
import uniffi.headway.Event
import uniffi.headway.EventListener
import uniffi.headway.HeadwayException
import uniffi.headway.ProgressUpdate
import uniffi.headway.Status
import uniffi.headway.Store
import uniffi.headway.SunbirdServer
import uniffi.headway.TokenProvider

const val COURSE = "do_fractions"
const val BATCH = "0130000000000000001"
val LEAVES = (1..10).map { "do_fractions_$it" }

/** One `headway serve` process on a free port of 127.0.0.1. */
class Server(vararg flags: String) : AutoCloseable {
    private val process: Process
    val url: String

    init {
        val binary = System.getenv("HEADWAY_BIN") ?: error("HEADWAY_BIN is not set")
        process = ProcessBuilder(listOf(binary, "serve", "--addr", "127.0.0.1:0") + flags)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val line = process.inputStream.bufferedReader().readLine() ?: ""
        check("listening on" in line) { "headway serve did not start: $line" }
        url = line.trim().substringAfterLast(' ')
    }

    fun admin(path: String, body: String? = null): String {
        val connection = URI(url + path).toURL().openConnection() as HttpURLConnection
        connection.setRequestProperty("Content-Type", "application/json")
        if (body != null) {
            connection.requestMethod = "POST"
            connection.doOutput = true
            connection.outputStream.use { it.write(body.toByteArray()) }
        }
        check(connection.responseCode == 200) { "$path answered ${connection.responseCode}" }
        return connection.inputStream.bufferedReader().readText()
    }

    fun course(learner: String) {
        val leaves = LEAVES.joinToString(",") { "\"$it\"" }
        admin("/admin/course", """{"courseId":"$COURSE","leafNodes":[$leaves]}""")
        admin("/admin/batch", """{"batchId":"$BATCH","courseId":"$COURSE","status":1}""")
        admin("/admin/enrol", """{"userId":"$learner","courseId":"$COURSE","batchId":"$BATCH"}""")
    }

    fun updateRequests(): Long =
        Regex("\"updateRequests\":(\\d+)").find(admin("/admin/stats"))!!.groupValues[1].toLong()

    override fun close() {
        process.destroy()
        process.waitFor()
    }
}

var counter = 0
fun learner() = "learner-kt-${counter++}-${System.nanoTime()}"

fun update(user: String, content: String, status: Status = Status.COMPLETED, progress: Int = 100, at: Long? = null) =
    ProgressUpdate(user, COURSE, BATCH, content, status, progress.toUByte(), at)

fun endEvent(user: String, content: String) = """{"eid":"END","ets":${System.currentTimeMillis()},"ver":"3.0",
  "actor":{"id":"$user","type":"User"},
  "context":{"channel":"ORG_001","env":"contentplayer","pdata":{"id":"prod.sunbird.app","pid":"sunbird.app.contentplayer"}},
  "object":{"id":"$content","type":"Content"},
  "edata":{"type":"content","mode":"play","summary":[{"progress":100},{"totallength":312},{"visitedlength":312},{"visitedcontentend":true}]}}"""

/** A server address nothing listens on: the phone is offline. */
fun unreachable(): SunbirdServer {
    val port = ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress()).use { it.localPort }
    return SunbirdServer("http://127.0.0.1:$port")
}

fun tempDir(): File = Files.createTempDirectory("headway-kt").toFile().apply { deleteOnExit() }

/** Collects events with the thread each arrived on. */
class Listener : EventListener {
    val events = CopyOnWriteArrayList<Event>()
    val threads = CopyOnWriteArrayList<Long>()

    override fun onEvent(event: Event) {
        events.add(event)
        threads.add(Thread.currentThread().id)
    }

    inline fun <reified T : Event> waitFor(): List<T> {
        val deadline = System.currentTimeMillis() + 10_000
        while (System.currentTimeMillis() < deadline) {
            val found = events.filterIsInstance<T>()
            if (found.isNotEmpty()) return found
            Thread.sleep(20)
        }
        throw AssertionError("no ${T::class.simpleName} within 10 s; got $events")
    }
}

fun theScenarioEndToEndFromKotlin(server: Server) = runBlocking {
    val user = learner()
    server.course(user)
    val online = SunbirdServer(server.url, userToken = "token")
    val dir = tempDir()
    val phone = Store(File(dir, "phone.db").path)
    val tablet = Store(File(dir, "tablet.db").path)
    val listener = Listener()
    phone.subscribe(listener)

    val courses = phone.refreshCourses(user, online)
    assertEquals(listOf(COURSE to 0u), courses.map { it.courseId to it.completionPercentage })

    for (content in LEAVES.take(5)) assertTrue(phone.record(update(user, content)))
    val context = CourseContext(user, COURSE, BATCH, 1L, "video/mp4")
    val played = assertNotNull(phone.recordPlayerEvent(endEvent(user, LEAVES[5]), context))
    assertEquals(Status.COMPLETED to 100.toUByte(), played.status to played.progress)

    assertEquals(listOf(60u to 6u), phone.courses(user).map { it.completionPercentage to it.progress })
    assertEquals(listOf(60u), phone.refreshCourses(user, unreachable()).map { it.completionPercentage })
    assertFailsWith<HeadwayException.ServerUnavailable> { phone.sync(user, unreachable()) }
    assertEquals(6, phone.pending(user).size)

    val anHourAgo = System.currentTimeMillis() - 3_600_000
    val before = phone.state(user, null)
    assertEquals(false, phone.record(update(user, LEAVES[0], Status.IN_PROGRESS, 10, anHourAgo)))
    assertEquals(before, phone.state(user, null))

    val requestsBefore = server.updateRequests()
    val report = phone.sync(user, online)
    assertEquals(listOf(6u, 6u, 0u), listOf(report.sent, report.acknowledged, report.retrying))
    assertTrue(report.rejected.isEmpty())
    assertTrue(report.requests < report.sent, "bulk: ${report.requests} requests for ${report.sent} items")
    assertEquals(report.requests.toLong(), server.updateRequests() - requestsBefore)
    assertEquals(emptyList<ContentItem>(), phone.pending(user))

    val listed = tablet.refreshCourses(user, online)
    assertEquals(listOf(COURSE to 60u), listed.map { it.courseId to it.completionPercentage })
    assertEquals(LEAVES.take(6).map { it to Status.COMPLETED }.toSet(),
        tablet.state(user, COURSE).map { it.contentId to it.status }.toSet())

    val changed = listener.waitFor<Event.ContentStateChanged>()
    assertTrue(changed.map { it.after.contentId }.toSet().containsAll(LEAVES.take(6)))
    assertEquals(60u, listener.waitFor<Event.CourseProgressChanged>().last().newPercentage)
    assertEquals(6u, listener.waitFor<Event.SyncFinished>().last().report.acknowledged)
    val failed = listener.waitFor<Event.SyncFailed>().first()
    assertEquals(user to 6u, failed.userId to failed.pending)
    assertTrue(Thread.currentThread().id !in listener.threads, "events arrive off the caller's thread")
    phone.close()
    tablet.close()
}

fun devicesConvergeThroughAPeerFile() {
    val user = learner()
    val dir = tempDir()
    Store(File(dir, "phone.db").path).use { phone ->
        Store(File(dir, "tablet.db").path).use { tablet ->
            phone.record(update(user, LEAVES[0]))
            phone.record(update(user, LEAVES[1], Status.IN_PROGRESS, 40))
            tablet.record(update(user, LEAVES[1], Status.IN_PROGRESS, 70))
            tablet.record(update(user, LEAVES[2], Status.IN_PROGRESS, 5))
            assertEquals(1u, tablet.peerImport(user, phone.peerExport(user, null)))
            val back = tablet.peerExport(user, phone.deviceId())
            assertEquals(2u, phone.peerImport(user, back))
            assertEquals(phone.state(user, null), tablet.state(user, null))
            assertEquals(mapOf(LEAVES[0] to 100, LEAVES[1] to 70, LEAVES[2] to 5),
                phone.state(user, null).associate { it.contentId to it.progress.toInt() })
            assertEquals(0u, phone.peerImport(user, back))
        }
    }
}

/** A pairing key for [user] in [dir], made by `headway peer pair`. */
fun pair(dir: File, name: String, user: String): String {
    val binary = System.getenv("HEADWAY_BIN") ?: error("HEADWAY_BIN is not set")
    val key = File(dir, name).path
    val status = ProcessBuilder(binary, "peer", "pair", "--user", user, "--out", key)
        .redirectErrorStream(true).start().waitFor()
    assertEquals(0, status)
    return key
}

// Issue 17, fault 5: a sealed peer file opens only with its pairing key (a trailing optional
// argument: calls without it keep working).
fun aSealedPeerFileOpensOnlyWithItsKey() {
    val user = learner()
    val dir = tempDir()
    val key = pair(dir, "k.key", user)
    val other = pair(dir, "o.key", user)
    Store(File(dir, "phone.db").path).use { phone ->
        Store(File(dir, "tablet.db").path).use { tablet ->
            phone.record(update(user, LEAVES[0]))
            val sealed = phone.peerExport(user, null, key)
            assertFailsWith<HeadwayException.NotPaired> { tablet.peerImport(user, sealed) }
            assertFailsWith<HeadwayException.NotPaired> { tablet.peerImport(user, sealed, other) }
            assertEquals(emptyList(), tablet.state(user, null))
            assertEquals(1u, tablet.peerImport(user, sealed, key))
        }
    }
}

fun badInputRaisesTheTypedErrorAndChangesNothing() = runBlocking {
    val user = learner()
    Store(File(tempDir(), "phone.db").path).use { phone ->
        phone.record(update(user, LEAVES[0], Status.IN_PROGRESS, 30))
        val before = phone.state(user, null) to phone.pending(user)
        val refused = listOf(
            update(user, LEAVES[0], Status.IN_PROGRESS, 101),
            update(user, "", Status.COMPLETED, 100),
            update("x".repeat(300), LEAVES[0]),
            update(user, LEAVES[0], at = System.currentTimeMillis() + 3 * 86_400_000L),
            update(user, LEAVES[0], at = 0L),
        )
        for (bad in refused) assertFailsWith<HeadwayException.InvalidInput> { phone.record(bad) }
        val context = CourseContext(user, COURSE, BATCH, 1L)
        assertFailsWith<HeadwayException.InvalidInput> { phone.recordPlayerEvent("{not json", context) }
        assertFailsWith<HeadwayException.RefusedPeerData> {
            phone.peerImport(user, byteArrayOf(0, 0, 0, 5, 104, 101, 108, 108, 111))
        }
        assertFailsWith<HeadwayException.InvalidInput> { phone.sync(user, SunbirdServer("ftp://nowhere")) }
        assertEquals(before, phone.state(user, null) to phone.pending(user))
    }
}

fun aCorruptFileRaisesTheTypedErrorAndIsLeftUntouched() {
    val damaged = File(tempDir(), "damaged.db")
    val garbage = "this is not a headway store\n".repeat(200).toByteArray()
    damaged.writeBytes(garbage)
    assertFailsWith<HeadwayException.CorruptStore> { Store(damaged.path) }
    assertContentEquals(garbage, damaged.readBytes())
}

fun aRefusedTokenIsRefreshedThroughTheAppsTokenProvider() = runBlocking {
    val user = learner()
    Server("--token", "fresh-token=$user").use { strict ->
        strict.course(user)
        var refreshed = 0
        val tokens = object : TokenProvider {
            override fun token(userId: String): String? = "expired-token"
            override fun refresh(userId: String): String? { refreshed++; return "fresh-token" }
        }
        Store(File(tempDir(), "phone.db").path).use { phone ->
            phone.record(update(user, LEAVES[0]))
            val report = phone.sync(user, SunbirdServer(strict.url, tokenProvider = tokens))
            assertEquals(1u to 1, report.acknowledged to refreshed)
            assertTrue(phone.pending(user).isEmpty())
        }
    }
}

fun main() {
    val failures = mutableListOf<String>()
    Server("--progress-lag-ms", "60000").use { server ->
        val tests: List<Pair<String, () -> Unit>> = listOf(
            "the scenario end to end from Kotlin" to { theScenarioEndToEndFromKotlin(server) },
            "devices converge through a peer file" to { devicesConvergeThroughAPeerFile() },
            "a sealed peer file opens only with its key" to { aSealedPeerFileOpensOnlyWithItsKey() },
            "bad input raises the typed error and changes nothing" to { badInputRaisesTheTypedErrorAndChangesNothing() },
            "a corrupt file raises the typed error and is left untouched" to { aCorruptFileRaisesTheTypedErrorAndIsLeftUntouched() },
            "a refused token is refreshed through the app's token provider" to { aRefusedTokenIsRefreshedThroughTheAppsTokenProvider() },
        )
        for ((name, test) in tests) {
            try {
                test()
                println("ok   $name")
            } catch (e: Throwable) {
                println("FAIL $name: $e")
                e.printStackTrace()
                failures.add(name)
            }
        }
    }
    println(if (failures.isEmpty()) "kotlin: all tests passed" else "kotlin: ${failures.size} failed: $failures")
    exitProcess(if (failures.isEmpty()) 0 else 1)
}
