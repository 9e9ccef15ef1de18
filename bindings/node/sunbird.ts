/**
 * `headway/sunbird`: a course service shaped like `@project-sunbird/sunbird-sdk` 7.6.3's
 * `CourseService`, answered by a headway `Store`.
 *
 * An app that talks to its course service through the SDK keeps its call sites: it provides
 * this `CourseService` behind the SDK's injection token for the three calls that carry a
 * learner's progress, and gets the SDK's request and response shapes, offline as online. The
 * request and response types are declared here, structurally compatible with the SDK's, so
 * this module does not need the SDK installed.
 *
 * ```ts
 * import { Store } from "headway";
 * import { CourseService } from "headway/sunbird";
 * const courses = new CourseService(Store.open("progress.db"),
 *   { baseUrl: "https://diksha.gov.in", apiKey, userToken });
 * courses.updateContentState({ userId, courseId, batchId, contentId, status: 2, progress: 100 })
 *   .subscribe(); // recorded on the device at once, sent when the server can be reached
 * courses.getEnrolledCourses({ userId, returnFreshCourses: true })
 *   .subscribe((list) => list.map((c) => c.completionPercentage));
 *
 * // In the Sunbird app (Angular), where pages ask for `@Inject("COURSE_SERVICE")`: the SDK's
 * // service for everything else, these three from headway.
 * { provide: "COURSE_SERVICE", useFactory: () => Object.assign(
 *     Object.create(SunbirdSdk.instance.courseService), {
 *       updateContentState: courses.updateContentState.bind(courses),
 *       getContentState: courses.getContentState.bind(courses),
 *       getEnrolledCourses: courses.getEnrolledCourses.bind(courses),
 *     }) }
 * ```
 *
 * @packageDocumentation
 */

import { Observable, defer, of } from "rxjs";
import { HeadwayError } from "./index";
import type { ContentItem, EnrolledCourse, Server, Store } from "./index";

/**
 * Where `updateContentState` should apply an update (the SDK's enum `UpdateContentStateTarget`,
 * whose members `LOCAL` and `SERVER` are these strings). headway applies every update to the
 * device's store, which is also its send queue; `SERVER` additionally starts a send at once.
 */
export type UpdateContentStateTarget = "LOCAL" | "SERVER";

/** One scored attempt of an assessment (the SDK's `ContentStateScore`). headway keeps none. */
export interface ContentStateScore {
  /** The attempt. */
  attemptId: string;
  /** When it was attempted, as the server wrote it. */
  lastAttemptedOn: string;
  /** The highest possible score. */
  totalMaxScore: number;
  /** The learner's score. */
  totalScore: number;
}

/**
 * A learner's progress change on one content of a course (the SDK's
 * `UpdateContentStateRequest`). `status` is optional in the type, as in the SDK's, but an
 * update without one is refused (`INVALID_INPUT`): Sunbird's server refuses such an item
 * (`MANDATORY_PARAMETER_MISSING`), and the SDK swallowed that.
 */
export interface UpdateContentStateRequest {
  /** Where to apply it; default both (`["LOCAL", "SERVER"]`), as in the SDK. */
  target?: UpdateContentStateTarget[];
  /** The learner. */
  userId: string;
  /** The course. */
  courseId: string;
  /** The content (a leaf node of the course). */
  contentId: string;
  /** The batch the learner is enrolled in. */
  batchId: string;
  /** Accepted and not kept: headway records status and progress only. */
  result?: string;
  /** Accepted and not kept: headway records status and progress only. */
  grade?: string;
  /** 0 not started, 1 in progress, 2 completed (Sunbird's numbers). */
  status?: number;
  /** 0..100, a whole number; absent counts as 0, and a completed content has 100. */
  progress?: number;
  /** Accepted and not kept: assessment scores travel with the SDK's assessment sync. */
  score?: ContentStateScore[];
  /** Accepted and not kept: assessment scores travel with the SDK's assessment sync. */
  bestScore?: ContentStateScore;
}

/**
 * Which content states to read (the SDK's `GetContentStateRequest`, which extends
 * client-services' request).
 */
export interface GetContentStateRequest {
  /** The learner. */
  userId: string;
  /** The course. */
  courseId: string;
  /** The batch the learner is enrolled in. */
  batchId: string;
  /** Only these contents; absent or empty: every content of the course the device knows. */
  contentIds?: string[];
  /** Which extra fields to read (`"progress"`, `"score"`); headway always has progress and
   * never scores, so this changes nothing. */
  fields?: ("progress" | "score")[];
  /** Send what is pending and read the server's states first, as the SDK does. */
  returnRefreshedContentStates?: boolean;
}

/** Whose courses to list (the SDK's `FetchEnrolledCourseRequest`). */
export interface FetchEnrolledCourseRequest {
  /** The learner. */
  userId: string;
  /** Send what is pending and read the server's list first, as the SDK does. */
  returnFreshCourses?: boolean;
}

/**
 * Where the learner stands on one content, in the shape of the server's `content/state/read`
 * rows (the SDK's `ContentState`): Sunbird's field names, and its times as
 * `yyyy-MM-dd HH:mm:ss:SSS+0000` strings in UTC. A time headway does not know is absent, never
 * `null`.
 */
export interface ContentState {
  /** The content. */
  contentId: string;
  /** The course. */
  courseId: string;
  /** The course again, as the server names it too. */
  collectionId: string;
  /** The batch. */
  batchId: string;
  /** 0 not started, 1 in progress, 2 completed. The SDK's type allows only 1 and 2; headway
   * answers 0 for a content recorded as not started, which the server would store too. */
  status: number;
  /** 0..100; 100 once completed. */
  progress: number;
  /** When the learner last opened the content, if known. */
  lastAccessTime?: string;
  /** When the learner completed the content, if known. */
  lastCompletedTime?: string;
}

/** The content states of one course and batch (the SDK's `ContentStateResponse`). */
export interface ContentStateResponse {
  /** One entry per content the device knows; empty when none. */
  contentList: ContentState[];
}

/**
 * A course the learner is enrolled in (the SDK's `Course`): every field the server sent in
 * its enrollment list, as it sent it, with the progress fields taken from the device, where
 * local completions count before the server has seen them.
 */
export interface Course {
  /** The course. */
  courseId: string;
  /** The batch the learner is enrolled in. */
  batchId: string;
  /** The learner (the server sends it; filled in from the request when it did not). */
  userId: string;
  /** Completed leaf nodes of the course (a count, as on the server). */
  progress: number;
  /** Leaf nodes of the course. */
  leafNodesCount: number;
  /** `progress * 100 / leafNodesCount`, rounded down; 100 once every leaf node is completed. */
  completionPercentage: number;
  /** 0 not started, 1 in progress, 2 completed, derived from `progress`. */
  status: number;
  /** Contents completed on this device that the server has not acknowledged yet (the SDK's
   * client-only field, where it meant every content completed since the list was last
   * fetched); absent when there are none. */
  contentsPlayedOffline?: string[];
  /** Every other field of the server's list (`courseName`, `content` with its `leafNodes`,
   * `enrolledDate`, `contentStatus`, `certificates`, `batch`, ...), exactly as sent. */
  [serverField: string]: unknown;
}

/**
 * The SDK-shaped calls as Promises, for code that awaits (Node, Electron's local server, or
 * `async` Angular code): the same names, requests and answers as the Observables.
 */
export interface CourseServicePromises {
  /** {@inheritDoc CourseService.updateContentState} */
  updateContentState(request: UpdateContentStateRequest): Promise<boolean>;
  /** {@inheritDoc CourseService.getContentState} */
  getContentState(request: GetContentStateRequest): Promise<ContentStateResponse | undefined>;
  /** {@inheritDoc CourseService.getEnrolledCourses} */
  getEnrolledCourses(request: FetchEnrolledCourseRequest): Promise<Course[]>;
}

/**
 * The SDK's `CourseService`, for the three calls that carry progress, answered by a headway
 * `Store` and synced with `server` (Sunbird's course service or `headway serve`).
 *
 * Offline it answers from the store at once, with what the learner did on this device counted;
 * `returnFreshCourses` and `returnRefreshedContentStates` send what is pending and read the
 * server first, and answer from the store when the server cannot be reached, as the SDK answers
 * from its cache. A refused user token errors the Observable with `HeadwayError` code
 * `CREDENTIALS_REFUSED` (the SDK answered its cache): the app should ask the learner to sign in
 * again. Observables are cold and lazy, as the SDK's: nothing happens before `subscribe`.
 *
 * What differs from the SDK, and why:
 * - `updateContentState` refuses an update headway cannot record (no `status`, a status or
 *   progress out of range, a blank id): the Observable errors with `HeadwayError` code
 *   `INVALID_INPUT`. The SDK answered `true` and the server dropped it, so nobody knew.
 * - `updateContentState` answers `true` once the update is durable on the device; it never
 *   waits for the network. With target `SERVER` (the default) it starts a send in the
 *   background, as the SDK queued its request; what the server cannot take yet stays pending
 *   and goes with the next sync, and `store.subscribe` hears `SyncFinished` or `SyncFailed`
 *   (the SDK swallowed every server error). A `LOCAL`-only update (the SDK
 *   uses it for Course Assessment contents) is recorded too and goes with the next sync:
 *   the store is both the cache and the send queue.
 * - `result`, `grade`, `score` and `bestScore` are accepted and not kept; `ContentState`
 *   answers have no `score`, `bestScore`, `grade`, `result`, `viewCount`, `completedCount`,
 *   `progressdetails` or `contentVersion` (headway records status, progress and times only).
 * - `ContentState.status` may be 0 (the SDK's enum has 1 and 2 only), and `ContentState`
 *   times are absent rather than `null` when not known.
 * - `getContentState` always answers a `ContentStateResponse` (an empty `contentList` when
 *   the device knows nothing), never `undefined`; without `contentIds` it lists the contents
 *   the device knows for the course, not the course's leaf nodes (headway does not fetch
 *   course content details).
 * - `Course` keeps every field the server sent, as sent (as the SDK does, whose types do not
 *   match the server: `contentStatus` is typed `string` but is a map, `dateTime` is typed
 *   `string` but is a number); `progress`, `completionPercentage`, `status` and
 *   `leafNodesCount` are the device's, which never go backwards while the server's list lags.
 *   The SDK overwrote its cache with the server's list, and bumped `progress` by one per
 *   offline completion without checking leaf nodes. `content.leafNodes` is put back from
 *   the addon's `leafNodes` (headway keeps the leaves apart from the other fields).
 * - `Course.contentsPlayedOffline` lists the contents completed on this device that the server
 *   has not acknowledged; the SDK listed every content completed since it last fetched the
 *   list, acknowledged or not.
 * - `Course.contentStatus` is the server's (written by its progress job, so it lags); the
 *   device's states are in `getContentState`.
 * - `getEnrolledCourses` takes no `apiHandler` (the SDK's hook for a custom list request):
 *   headway reads the list through its own Sunbird adapter.
 * - Before the first successful read of a learner's list, both reads go to the server first,
 *   as the SDK does when its cache is empty.
 *
 * The same calls as Promises are under {@link CourseService.promises}.
 */
export class CourseService {
  /**
   * The same three calls as Promises: `await courses.promises.getEnrolledCourses(request)`.
   * A property rather than `...Async` twins, so the method names stay the SDK's (a search
   * for a call site finds both forms) and the Observable API stays exactly the SDK's, like
   * Node's `fs.promises`. In Angular code, `firstValueFrom(courses.getEnrolledCourses(r))`
   * (RxJS 7) or `.toPromise()` (RxJS 6) gives the same answer from the Observable.
   */
  readonly promises: CourseServicePromises;

  private readonly sending = new Map<string, Promise<void>>();
  private readonly sendAgain = new Set<string>();
  /** Learners whose list this service asked the server for once (answered or not). */
  private readonly asked = new Set<string>();

  /**
   * A service over `store` (opened by the app, which also closes it) that syncs with `server`.
   */
  constructor(
    private readonly store: Store,
    private readonly server: Server,
  ) {
    this.promises = {
      updateContentState: (request) => firstAnswer(this.updateContentState(request)),
      getContentState: (request) => firstAnswer(this.getContentState(request)),
      getEnrolledCourses: (request) => firstAnswer(this.getEnrolledCourses(request)),
    };
  }

  /**
   * Records a learner's progress on one content (the SDK's `updateContentState`). Emits `true`
   * once the update is durable on the device, then completes; an update below what is already
   * recorded changes nothing and emits `true` too (progress never goes backwards). A request
   * headway cannot record errors with `HeadwayError` code `INVALID_INPUT` and records
   * nothing. With target `SERVER` (the default) a send starts in the background.
   */
  updateContentState(request: UpdateContentStateRequest): Observable<boolean> {
    return defer(() => of(this.record(request)));
  }

  /**
   * Where the learner stands on the contents of one course and batch (the SDK's
   * `getContentState`), in the server's `content/state/read` shape. Offline, at once from the
   * store; with `returnRefreshedContentStates`, after sending what is pending and reading the
   * server's states (from the store when the server cannot be reached).
   */
  getContentState(request: GetContentStateRequest): Observable<ContentStateResponse | undefined> {
    return this.read(request.userId, request.returnRefreshedContentStates, () =>
      this.contentStates(request),
    );
  }

  /**
   * The courses the learner is enrolled in (the SDK's `getEnrolledCourses`), with the
   * device's progress. Offline, at once from the store; with `returnFreshCourses`, after
   * sending what is pending and reading the server's list (from the store when the server
   * cannot be reached).
   */
  getEnrolledCourses(request: FetchEnrolledCourseRequest): Observable<Course[]> {
    return this.read(request.userId, request.returnFreshCourses, () =>
      this.courses(request.userId, this.store.courses(request.userId)),
    );
  }

  /**
   * `answer()` from the store: emitted on subscribe, or, when asked for fresh answers or
   * before this service asked for the learner's list once (when the store holds none: a
   * learner enrolled in nothing is asked for once, not at every read), once `refreshCourses`
   * has sent what is pending and read the server (it answers from the store itself when the
   * server cannot be reached; a refused token rejects with `CREDENTIALS_REFUSED`).
   */
  private read<T>(userId: string, fresh: boolean | undefined, answer: () => T): Observable<T> {
    return defer(() => {
      const firstRead = !this.asked.has(userId) && this.store.courses(userId).length === 0;
      if (fresh !== true && !firstRead) {
        return of(answer());
      }
      return this.store.refreshCourses(userId, this.server).then(() => {
        this.asked.add(userId);
        return answer();
      });
    });
  }

  private record(request: UpdateContentStateRequest): boolean {
    if (request.status === undefined || request.status === null) {
      throw new HeadwayError(
        "INVALID_INPUT",
        `the update of ${request.contentId} has no status (0, 1 or 2): Sunbird's server refuses it`,
      );
    }
    // The store checks the rest (ids, ranges, types) and refuses with INVALID_INPUT.
    this.store.record({
      userId: request.userId,
      courseId: request.courseId,
      batchId: request.batchId,
      contentId: request.contentId,
      status: request.status,
      // Sunbird's rules: a missing progress is 0 (and the store makes a completed one 100).
      progress: request.progress ?? 0,
    });
    const target = request.target ?? ["LOCAL", "SERVER"];
    if (target.includes("SERVER")) {
      this.send(request.userId);
    }
    return true;
  }

  /** Sends the learner's pending progress in the background, one sync at a time. */
  private send(userId: string): void {
    if (this.sending.has(userId)) {
      this.sendAgain.add(userId);
      return;
    }
    const run = async (): Promise<void> => {
      do {
        this.sendAgain.delete(userId);
        try {
          await this.store.sync(userId, this.server);
        } catch {
          // Nothing is lost: what was not acknowledged stays pending for the next sync. The
          // store's subscribers hear why (`SyncFailed`, a refused token included), and the
          // next fresh read errors with CREDENTIALS_REFUSED if the token is refused.
        }
      } while (this.sendAgain.has(userId));
      this.sending.delete(userId);
    };
    this.sending.set(userId, run());
  }

  private contentStates(request: GetContentStateRequest): ContentStateResponse {
    const wanted = request.contentIds?.length ? new Set(request.contentIds) : undefined;
    const contentList = this.store
      .state(request.userId, request.courseId)
      .filter((item) => item.batchId === request.batchId)
      .filter((item) => wanted === undefined || wanted.has(item.contentId))
      .map(contentState);
    return { contentList };
  }

  private courses(userId: string, list: EnrolledCourse[]): Course[] {
    if (list.length === 0) {
      return [];
    }
    const offline = new Map<string, string[]>();
    for (const item of this.store.pending(userId)) {
      if (item.status === 2) {
        const key = `${item.courseId}\u0000${item.batchId}`;
        offline.set(key, [...(offline.get(key) ?? []), item.contentId]);
      }
    }
    return list.map((enrolled) => {
      const sent: Record<string, unknown> = JSON.parse(enrolled.extraJson);
      // headway keeps the leaves apart from the other fields: put them back where the SDK's
      // app reads them.
      if (enrolled.leafNodes !== null && isObject(sent.content)) {
        sent.content = { ...sent.content, leafNodes: enrolled.leafNodes };
      }
      const course: Course = {
        ...sent,
        courseId: enrolled.courseId,
        batchId: enrolled.batchId,
        userId: typeof sent.userId === "string" ? sent.userId : userId,
        progress: enrolled.progress,
        leafNodesCount: enrolled.leafNodesCount,
        completionPercentage: enrolled.completionPercentage,
        status: enrolled.status,
      };
      const played = offline.get(`${enrolled.courseId}\u0000${enrolled.batchId}`);
      if (played) {
        course.contentsPlayedOffline = played;
      }
      return course;
    });
  }
}

/** A store item in the server's `content/state/read` shape. */
function contentState(item: ContentItem): ContentState {
  const state: ContentState = {
    contentId: item.contentId,
    courseId: item.courseId,
    collectionId: item.courseId,
    batchId: item.batchId,
    status: item.status,
    progress: item.progress,
  };
  if (item.lastAccessTimeMs !== null) {
    state.lastAccessTime = sunbirdTime(item.lastAccessTimeMs);
  }
  if (item.lastCompletedTimeMs !== null) {
    state.lastCompletedTime = sunbirdTime(item.lastCompletedTimeMs);
  }
  return state;
}

/**
 * A time in Sunbird's format, `yyyy-MM-dd HH:mm:ss:SSS+0000` in UTC (a colon before the
 * milliseconds, no colon in the zone): `2024-05-01 10:15:30:123+0000`.
 */
export function sunbirdTime(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-05-01T10:15:30.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}:${iso.slice(20, 23)}+0000`;
}

/** The one answer of a service Observable, as a Promise (works with RxJS 6 and 7). */
function firstAnswer<T>(answer: Observable<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    answer.subscribe({ next: resolve, error: reject });
  });
}

/** A plain JSON object (not an array, not null). */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
