//! Many content items as one JavaScript array, built natively with the fewest Node-API calls:
//! each property name is made once per array (not once per object, as generated conversions
//! do), and the learner, course and batch ids, which repeat from one item to the next, are
//! made once per run of equal values. `state` and `pending` of 10,000 items cross the
//! boundary this way (see bindings/node/bench).

use napi::bindgen_prelude::{Array, JsObjectValue, Null, Object, ToNapiValue};
use napi::{Env, JsString, JsValue};

use crate::types::status_number;

/// The property names of a `ContentItem`, made once per array.
struct Keys<'env> {
    user_id: JsString<'env>,
    course_id: JsString<'env>,
    batch_id: JsString<'env>,
    content_id: JsString<'env>,
    status: JsString<'env>,
    progress: JsString<'env>,
    last_access_time_ms: JsString<'env>,
    last_completed_time_ms: JsString<'env>,
}

/// The last value made for one id field, reused while the next items repeat it.
struct Repeated<'env> {
    text: String,
    value: Option<JsString<'env>>,
}

impl<'env> Repeated<'env> {
    fn new() -> Repeated<'env> {
        Repeated {
            text: String::new(),
            value: None,
        }
    }

    fn get(&mut self, env: &'env Env, text: &str) -> napi::Result<JsString<'env>> {
        match self.value {
            Some(value) if self.text == text => Ok(value),
            _ => {
                let value = env.create_string(text)?;
                self.text.clear();
                self.text.push_str(text);
                self.value = Some(value);
                Ok(value)
            }
        }
    }
}

/// `items` as an array of `ContentItem` objects (the shape `index.d.ts` declares).
pub(crate) fn items_to_js<'env>(
    env: &'env Env,
    items: &[headway::ContentItem],
) -> napi::Result<Array<'env>> {
    let keys = Keys {
        user_id: env.create_string("userId")?,
        course_id: env.create_string("courseId")?,
        batch_id: env.create_string("batchId")?,
        content_id: env.create_string("contentId")?,
        status: env.create_string("status")?,
        progress: env.create_string("progress")?,
        last_access_time_ms: env.create_string("lastAccessTimeMs")?,
        last_completed_time_ms: env.create_string("lastCompletedTimeMs")?,
    };
    let (mut user, mut course, mut batch) = (Repeated::new(), Repeated::new(), Repeated::new());
    let length = u32::try_from(items.len()).map_err(|_| {
        napi::Error::new(
            napi::Status::GenericFailure,
            "more items than an array holds",
        )
    })?;
    let mut array = env.create_array(length)?;
    let null = Null.into_unknown(env)?;
    // A time as a number, or `null` when it is not known.
    let time = |ms: Option<headway::Timestamp>| -> napi::Result<napi::Unknown<'env>> {
        match ms {
            Some(ms) => Ok(env.create_int64(ms.as_millis())?.to_unknown()),
            None => Ok(null),
        }
    };
    for (index, item) in items.iter().enumerate() {
        let (key, state) = (item.key(), item.state());
        let mut object = Object::new(env)?;
        object.set_property(keys.user_id, user.get(env, key.user().as_str())?)?;
        object.set_property(keys.course_id, course.get(env, key.course().as_str())?)?;
        object.set_property(keys.batch_id, batch.get(env, key.batch().as_str())?)?;
        object.set_property(keys.content_id, env.create_string(key.content().as_str())?)?;
        object.set_property(
            keys.status,
            env.create_uint32(status_number(state.status()))?,
        )?;
        let progress = u32::from(state.progress().get());
        object.set_property(keys.progress, env.create_uint32(progress)?)?;
        object.set_property(keys.last_access_time_ms, time(state.last_access_time())?)?;
        object.set_property(
            keys.last_completed_time_ms,
            time(state.last_completed_time())?,
        )?;
        // `index` < `length`, a u32.
        array.set_element(index as u32, object)?;
    }
    Ok(array)
}
