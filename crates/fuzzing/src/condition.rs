//! The condition language (`crates/conditions`): a condition in its JSON wire form is parsed as
//! a subscription's is, then evaluated on sample events and on the data the input may carry.
//!
//! Input: either a condition, or `{"condition": c, ...data}` where the data keys are
//! `profile`, `subprofile`, `event`, `previous` (objects), `interests`, `tags`,
//! `previous_interests` (lists of strings) and `new_profile` (a boolean); wrong types count as
//! absent, so the fuzzer spends its time on the language, not on the data's shape.
//!
//! Beyond "no panic", the groups must mean what `docs/conditions.md` says: `not` negates, and
//! `all` / `any` of one condition are that condition.

use hookline_conditions::{Condition, EvalContext};
use hookline_model::Enriched;
use hookline_model::{AccountId, CollectionId, DatabaseId};
use serde_json::{json, Map, Value};

use crate::{ensure, sample, Broken, Verdict};

/// The data one evaluation reads, owned.
#[derive(Default)]
struct Data {
    profile: Map<String, Value>,
    subprofile: Option<Map<String, Value>>,
    event: Map<String, Value>,
    interests: Vec<String>,
    tags: Vec<String>,
    previous: Option<Map<String, Value>>,
    previous_interests: Option<Vec<String>>,
    new_profile: bool,
}

impl Data {
    fn context(&self) -> EvalContext<'_> {
        EvalContext {
            profile_fields: &self.profile,
            subprofile_fields: self.subprofile.as_ref(),
            event: &self.event,
            interests: &self.interests,
            tags: &self.tags,
            previous_fields: self.previous.as_ref(),
            previous_interests: self.previous_interests.as_deref(),
            is_new_profile: self.new_profile,
            now: sample::now(),
        }
    }

    fn from_event(e: Enriched) -> Self {
        Data {
            profile: e.profile_fields,
            subprofile: e.subprofile_fields,
            event: e.body,
            interests: e.interests,
            tags: e.tags,
            previous: e.previous_fields,
            previous_interests: e.previous_interests,
            new_profile: e.is_new_profile,
        }
    }

    /// The data keys of a `{"condition": ...}` input.
    fn from_input(input: &Map<String, Value>) -> Self {
        let object = |k: &str| input.get(k).and_then(Value::as_object).cloned();
        let strings = |k: &str| {
            input.get(k).and_then(Value::as_array).map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        Data {
            profile: object("profile").unwrap_or_default(),
            subprofile: object("subprofile"),
            event: object("event").unwrap_or_default(),
            interests: strings("interests").unwrap_or_default(),
            tags: strings("tags").unwrap_or_default(),
            previous: object("previous"),
            previous_interests: strings("previous_interests"),
            new_profile: input.get("new_profile").and_then(Value::as_bool) == Some(true),
        }
    }
}

pub(crate) fn check(data: &[u8]) -> Result<Verdict, Broken> {
    let input: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => return Ok(Verdict::Refused(format!("not JSON: {e}"))),
    };
    let (wire, given) = match &input {
        Value::Object(m) if m.contains_key("condition") => (&m["condition"], Some(m)),
        other => (other, None),
    };
    let condition = match Condition::parse(wire) {
        Ok(c) => c,
        Err(e) => {
            ensure(!e.message().is_empty(), || {
                format!("a refusal without a message at {:?}", e.path())
            })?;
            return Ok(Verdict::Refused(e.to_string()));
        }
    };
    let mut all_data = samples();
    all_data.extend(given.map(Data::from_input));
    // The groups around it, parsed once; one may exceed the nesting limit, and is then skipped.
    let not = Condition::parse(&json!({ "not": wire })).ok();
    let all = Condition::parse(&json!({ "all": [wire] })).ok();
    let any = Condition::parse(&json!({ "any": [wire] })).ok();
    for d in &all_data {
        let ctx = d.context();
        let holds = condition.evaluate(&ctx);
        ensure(condition.evaluate(&ctx) == holds, || {
            "the same condition on the same data gave two answers".into()
        })?;
        let agrees = |group: &Option<Condition>, expected: bool| {
            group.as_ref().is_none_or(|g| g.evaluate(&ctx) == expected)
        };
        ensure(agrees(&not, !holds), || {
            format!("`not` of a condition that is {holds} is not {}", !holds)
        })?;
        ensure(agrees(&all, holds) && agrees(&any, holds), || {
            format!("`all` or `any` of one condition that is {holds} differs from it")
        })?;
    }
    Ok(Verdict::Accepted)
}

/// The sample events of the sample account, for the profile and for a subprofile.
fn samples() -> Vec<Data> {
    let account = AccountId::new(sample::ACCOUNT).expect("a valid id");
    let database = DatabaseId::new(sample::DATABASE).expect("a valid id");
    let collection = CollectionId::new("7").expect("a valid id");
    let mut out: Vec<Data> = sample::events(&account, &database, None)
        .into_iter()
        .chain(sample::events(&account, &database, Some(&collection)))
        .map(Data::from_event)
        .collect();
    out.push(Data::default());
    out
}
