// headway/sunbird's CourseService against the SDK's own types (issue 19, item 3): for each of
// the three methods, ours can stand where the SDK's `CourseService` method is expected, the
// SDK's request objects are accepted, and our answers are the SDK's response types. It only
// has to compile (`tsc -p test/sdk/tsconfig.json`); it is never run.

import type {
  ContentState as SdkContentState,
  ContentStateResponse as SdkContentStateResponse,
  Course as SdkCourse,
  CourseService as SdkCourseService,
  FetchEnrolledCourseRequest as SdkFetchEnrolledCourseRequest,
  GetContentStateRequest as SdkGetContentStateRequest,
  UpdateContentStateRequest as SdkUpdateContentStateRequest,
} from "@project-sunbird/sunbird-sdk";
import { UpdateContentStateTarget } from "@project-sunbird/sunbird-sdk";
import type { Observable } from "rxjs";

import type {
  ContentState,
  ContentStateResponse,
  Course,
  CourseService,
  FetchEnrolledCourseRequest,
  GetContentStateRequest,
  UpdateContentStateRequest,
} from "../../sunbird";

declare const ours: CourseService;

// 1. Each method can be provided where the SDK's service is expected (the app's injection
//    token is typed with the SDK's interface), with the SDK's own request and answer types.
export const updateContentState: SdkCourseService["updateContentState"] =
  ours.updateContentState.bind(ours);
export const getContentState: SdkCourseService["getContentState"] = ours.getContentState.bind(ours);
export const getEnrolledCourses: SdkCourseService["getEnrolledCourses"] =
  ours.getEnrolledCourses.bind(ours);

// The same through a partial service object, the way an app overrides part of the SDK.
export const provided: Pick<
  SdkCourseService,
  "updateContentState" | "getContentState" | "getEnrolledCourses"
> = ours;

// The whole service an app provides behind its "COURSE_SERVICE" token (sunbird.ts's example):
// the SDK's service for everything else, these three from headway.
declare const sdkService: SdkCourseService;
export const swapped: SdkCourseService = Object.assign(Object.create(sdkService) as SdkCourseService, {
  updateContentState: ours.updateContentState.bind(ours),
  getContentState: ours.getContentState.bind(ours),
  getEnrolledCourses: ours.getEnrolledCourses.bind(ours),
} satisfies Pick<SdkCourseService, "updateContentState" | "getContentState" | "getEnrolledCourses">);

// 2. The SDK's request objects, exactly as the SDK's own code builds them, are accepted
//    (checked without method bivariance: as plain values of our request types).
declare const sdkUpdate: SdkUpdateContentStateRequest;
declare const sdkRead: SdkGetContentStateRequest;
declare const sdkFetch: SdkFetchEnrolledCourseRequest;
export const update: UpdateContentStateRequest = sdkUpdate;
export const read: GetContentStateRequest = sdkRead;
export const fetch: FetchEnrolledCourseRequest = sdkFetch;
// The SDK's summary handler, on a player END event (sunbird-sdk's telemetry handler).
export const fromPlayer = ours.updateContentState({
  userId: "u1",
  contentId: "do_1",
  courseId: "do_course",
  batchId: "0130",
  status: 2,
  progress: 100,
  target: [UpdateContentStateTarget.LOCAL, UpdateContentStateTarget.SERVER],
});
export const fresh = ours.getContentState({
  userId: "u1",
  courseId: "do_course",
  batchId: "0130",
  contentIds: ["do_1"],
  fields: ["progress", "score"],
  returnRefreshedContentStates: true,
});

// 3. Our answers are the SDK's response types.
export const answeredUpdate: Observable<boolean> = ours.updateContentState(sdkUpdate);
export const answeredRead: Observable<SdkContentStateResponse | undefined> =
  ours.getContentState(sdkRead);
export const answeredFetch: Observable<SdkCourse[]> = ours.getEnrolledCourses(sdkFetch);
declare const state: ContentState;
declare const states: ContentStateResponse;
declare const course: Course;
export const sdkState: SdkContentState = state;
export const sdkStates: SdkContentStateResponse = states;
export const sdkCourse: SdkCourse = course;

// 4. The SDK's types are real ones, and tight: each wrong value below is refused. An import
//    that does not resolve in a skipped .d.ts file silently becomes `any`, which would accept
//    anything and make 1 to 3 prove nothing; then these directives are unused, and tsc fails.
// @ts-expect-error: a method answering courses is not the SDK's getContentState.
export const notGetContentState: SdkCourseService["getContentState"] = ours.getEnrolledCourses.bind(ours);
// @ts-expect-error: rxjs's Observable is real (not `any`): courses are not a boolean.
export const notBoolean: Observable<boolean> = ours.getEnrolledCourses(sdkFetch);
// @ts-expect-error: the SDK's update status is client-services' ContentStateStatus, a number.
export const textStatus: SdkUpdateContentStateRequest = { ...sdkUpdate, status: "2" };
// @ts-expect-error: the SDK's read request takes client-services' field names only.
export const unknownField: SdkGetContentStateRequest = { ...sdkRead, fields: ["grade"] };
// @ts-expect-error: the SDK's fetch request needs the learner as a string.
export const numericLearner: SdkFetchEnrolledCourseRequest = { userId: 1 };
// @ts-expect-error: the SDK's content states have numeric statuses.
export const textState: SdkContentStateResponse = { contentList: [{ status: "2" }] };
// @ts-expect-error: the SDK's Course counts progress with a number.
export const textProgress: SdkCourse = { progress: "1" };
// @ts-expect-error: the SDK's Course.content is client-services' Content, with required fields.
export const bareContent: SdkCourse = { content: { identifier: "do_1" } };

// 5. The Promise forms answer the same types.
export const promised: [Promise<boolean>, Promise<SdkContentStateResponse | undefined>, Promise<SdkCourse[]>] = [
  ours.promises.updateContentState(sdkUpdate),
  ours.promises.getContentState(sdkRead),
  ours.promises.getEnrolledCourses(sdkFetch),
];
