// How an app's TypeScript uses the package: compiled with `tsc --noEmit` against the committed
// index.d.ts (test/types.test.mjs). Each `@ts-expect-error` is a misuse the types must refuse:
// if the types stop refusing it, tsc fails on the unused directive.
import { HeadwayError, Status, Store } from "headway";
import type { ContentItem, Durability, EnrolledCourse, Event, HeadwayErrorCode, Server, SyncReport } from "headway";

async function app(): Promise<void> {
  const durability: Durability = "processCrash";
  const store: Store = Store.open("progress.db", { durability });
  const memory: Store = Store.openInMemory();
  // @ts-expect-error: durability is "powerLoss" or "processCrash"
  Store.open("progress.db", { durability: "fast" });

  const raised: boolean = store.record({
    userId: "u", courseId: "c", batchId: "b", contentId: "k", status: Status.Completed, progress: 100,
  });
  store.record({ userId: "u", courseId: "c", batchId: "b", contentId: "k", status: 1, progress: 5, consumedAtMs: null });
  // @ts-expect-error: progress is a number
  store.record({ userId: "u", courseId: "c", batchId: "b", contentId: "k", status: 1, progress: "5" });
  // @ts-expect-error: contentId is required
  store.record({ userId: "u", courseId: "c", batchId: "b", status: 1, progress: 5 });
  const count: number = store.recordBatch([]);

  const items: ContentItem[] = store.state("u", "c");
  const accessed: number | null = items[0].lastAccessTimeMs;
  const status: Status = items[0].status;
  const pending: ContentItem[] = store.pending("u");
  const courses: EnrolledCourse[] = store.courses("u");
  const leaves: string[] | null = courses[0].leafNodes;
  const fields: unknown = JSON.parse(courses[0].extraJson);
  store.rejected("u").map((rejected) => rejected.item.contentId + rejected.reason);
  const resent: number = store.resendRejected("u");
  const device: string = store.deviceId();
  store.recordPlayerEvent({ eid: "END" }, { userId: "u", courseId: "c", batchId: "b", batchStatus: 1 });
  store.recordPlayerEvent("{}", { userId: "u", courseId: "c", batchId: "b", mimeType: "video/mp4" });

  const unsubscribe: () => void = store.subscribe((event: Event) => {
    switch (event.type) {
      case "ContentStateChanged":
        console.log(event.before?.progress, event.after.progress);
        break;
      case "CourseProgressChanged":
        console.log(event.oldPercentage, event.newPercentage);
        break;
      case "SyncFinished":
        console.log(event.report.acknowledged);
        break;
      case "SyncFailed":
        console.log(event.cause, event.pending);
        break;
    }
  });
  unsubscribe();

  const file: Buffer = store.peerExport("u", device, "asha.key");
  const imported: number = memory.peerImport("u", file, null);

  const server: Server = {
    baseUrl: "https://diksha.gov.in",
    apiKey: "key",
    tokenProvider: async (userId: string, refreshed: boolean) => (refreshed ? "new" : "old") + userId,
  };
  const plain: Server = { baseUrl: "https://diksha.gov.in", tokenProvider: (userId) => userId };
  // @ts-expect-error: a token provider gives a string
  const wrong: Server = { baseUrl: "https://diksha.gov.in", tokenProvider: () => 42 };
  try {
    const report: SyncReport = await store.sync("u", server);
    console.log(report.sent, report.acknowledged, report.retrying, report.requests, report.rejected.length);
    const fresh: EnrolledCourse[] = await store.refreshCourses("u", plain);
    console.log(fresh.length);
  } catch (error) {
    if (error instanceof HeadwayError) {
      const code: HeadwayErrorCode = error.code;
      // @ts-expect-error: not one of the codes
      const unknown: HeadwayErrorCode = "OFFLINE";
      console.log(code, unknown);
    }
  }
  store.startBackgroundSync("u", server, { debounceMs: 500 });
  store.networkUp();
  store.appResumed();
  store.stopBackgroundSync();
  store.close();
  console.log(raised, count, accessed, status, pending, leaves, fields, resent, imported, wrong);
}
void app;
