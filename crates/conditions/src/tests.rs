//! Table-driven tests of the whole language: valid conditions against fixed contexts, and
//! invalid conditions against the error path and message they must produce.

use serde_json::{json, Map, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::{Condition, ConditionError, EvalContext};

/// The moment every relative date in these tests is measured from: a Friday, 10:00 UTC.
const NOW: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

/// Which state of the world a case is evaluated in.
#[derive(Clone, Copy, Debug)]
enum World {
    /// A click on a mailing; no previous state, not a new profile.
    Click,
    /// A profile update: `name` and `city` changed, `zip` listed with an unchanged value;
    /// interests were `newsletter` and `Old-Interest`.
    Update,
    /// A profile create.
    Create,
    /// Like `Click`, but the event concerns no subprofile.
    NoSubprofile,
}

struct Fixture {
    profile: Map<String, Value>,
    subprofile: Map<String, Value>,
    event: Map<String, Value>,
    interests: Vec<String>,
    tags: Vec<String>,
    previous: Map<String, Value>,
    previous_interests: Vec<String>,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            profile: object(json!({
                "name": "Mike Jansen",
                "city": "Amsterdam",
                "home_city": "amsterdam",
                "email": "mike@example.com",
                "age": 42,
                "max_age": 40,
                "score": "7.5",
                "code": "ABC-123",
                "zip": "1012AB",
                "birthdate": "1990-05-01",
                "signup": "2026-03-01 09:00:00",
                "last_order": "2025-12-24T18:30:00+01:00",
                "phones": ["+31 20 1234567", "+31 6 7654321"],
                "lucky_numbers": [3, 7, "x"],
                "vip": true,
                "empty": "",
                "nothing": null,
                "greeting": "Grüße aus KÖLN"
            })),
            subprofile: object(json!({
                "product": "Bike",
                "price": "899.00",
                "ordered": "2026-04-20"
            })),
            event: object(json!({
                "type": "click",
                "trigger": "rest",
                "action": "update",
                "ip": "203.0.113.7",
                "original": "https://shop.example/offer?utm=x",
                "mailing": "m-20261125-01",
                "headers": {"User-Agent": "Mozilla/5.0"}
            })),
            interests: strings(&["VIP", "newsletter"]),
            tags: strings(&["black-friday", "promo"]),
            previous: object(json!({"name": "Mike", "city": "Rotterdam", "zip": "1012AB"})),
            previous_interests: strings(&["newsletter", "Old-Interest"]),
        }
    }

    fn ctx(&self, world: World) -> EvalContext<'_> {
        let update = matches!(world, World::Update);
        EvalContext {
            profile_fields: &self.profile,
            subprofile_fields: (!matches!(world, World::NoSubprofile)).then_some(&self.subprofile),
            event: &self.event,
            interests: &self.interests,
            tags: &self.tags,
            previous_fields: update.then_some(&self.previous),
            previous_interests: update.then_some(self.previous_interests.as_slice()),
            is_new_profile: matches!(world, World::Create),
            now: NOW,
        }
    }
}

fn eval(fixture: &Fixture, cond: &Value, world: World) -> bool {
    let c = Condition::parse(cond).unwrap_or_else(|e| panic!("{cond} should parse: {e}"));
    c.evaluate(&fixture.ctx(world))
}

#[test]
fn evaluation_table() {
    use World::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, World, bool)> = vec![
        // The product's example and the design's example.
        ("name contains Mike", json!({"field": "name", "op": "contains", "value": "Mike"}), Click, true),
        ("name contains Piet", json!({"field": "name", "op": "contains", "value": "Piet"}), Click, false),
        (
            "design example",
            json!({"all": [{"field": "name", "op": "contains", "value": "Mike"},
                           {"any": [{"interest": "vip", "op": "has"},
                                    {"field": "city", "op": "equals", "other_field": "home_city"}]}]}),
            Click,
            true,
        ),
        (
            "design example, second branch only",
            json!({"all": [{"field": "name", "op": "contains", "value": "Mike"},
                           {"any": [{"interest": "gold", "op": "has"},
                                    {"field": "city", "op": "equals", "other_field": "home_city"}]}]}),
            Click,
            true,
        ),
        (
            "design example, no branch",
            json!({"all": [{"field": "name", "op": "contains", "value": "Mike"},
                           {"any": [{"interest": "gold", "op": "has"},
                                    {"field": "city", "op": "equals", "other_field": "email"}]}]}),
            Click,
            false,
        ),
        ("null is always true", Value::Null, Click, true),
        // equals / not_equals: text, case, other_field, numbers.
        ("equals folds case", json!({"field": "city", "op": "equals", "value": "AMSTERDAM"}), Click, true),
        ("equals case_sensitive mismatch", json!({"field": "city", "op": "equals", "value": "amsterdam", "case_sensitive": true}), Click, false),
        ("equals case_sensitive match", json!({"field": "city", "op": "equals", "value": "Amsterdam", "case_sensitive": true}), Click, true),
        ("equals other_field folds case", json!({"field": "city", "op": "equals", "other_field": "home_city"}), Click, true),
        ("equals other_field case_sensitive", json!({"field": "city", "op": "equals", "other_field": "home_city", "case_sensitive": true}), Click, false),
        ("equals other_field missing", json!({"field": "city", "op": "equals", "other_field": "no_such"}), Click, false),
        ("equals number field as text", json!({"field": "age", "op": "equals", "value": "42"}), Click, true),
        ("equals number field, float text differs", json!({"field": "age", "op": "equals", "value": "42.0"}), Click, false),
        ("equals numeric", json!({"field": "age", "op": "equals", "value": "42.0", "numeric": true}), Click, true),
        ("equals numeric on text number", json!({"field": "score", "op": "equals", "value": 7.5, "numeric": true}), Click, true),
        ("equals boolean field", json!({"field": "vip", "op": "equals", "value": true}), Click, true),
        ("missing field equals empty", json!({"field": "no_such", "op": "equals", "value": ""}), Click, true),
        ("equals non-ascii folds", json!({"field": "greeting", "op": "contains", "value": "köln"}), Click, true),
        ("not_equals other city", json!({"field": "city", "op": "not_equals", "value": "Rotterdam"}), Click, true),
        ("not_equals folds case", json!({"field": "city", "op": "not_equals", "value": "AMSTERDAM"}), Click, false),
        ("not_equals numeric", json!({"field": "age", "op": "not_equals", "value": 41, "numeric": true}), Click, true),
        ("not_equals numeric on text is false", json!({"field": "name", "op": "not_equals", "value": 5, "numeric": true}), Click, false),
        ("not_equals numeric on missing is false", json!({"field": "no_such", "op": "not_equals", "value": 5, "numeric": true}), Click, false),
        ("equals numeric on array element", json!({"field": "lucky_numbers", "op": "equals", "value": 7, "numeric": true}), Click, true),
        ("not_equals numeric on array with the number", json!({"field": "lucky_numbers", "op": "not_equals", "value": 7, "numeric": true}), Click, false),
        // contains / not_contains / starts_with / ends_with.
        ("event contains folds case", json!({"event": "original", "op": "contains", "value": "SHOP.example"}), Click, true),
        ("not_contains absent", json!({"field": "name", "op": "not_contains", "value": "piet"}), Click, true),
        ("not_contains present", json!({"field": "name", "op": "not_contains", "value": "JANSEN"}), Click, false),
        ("contains on array element", json!({"field": "phones", "op": "contains", "value": "6 7654"}), Click, true),
        ("not_contains on array: no element", json!({"field": "phones", "op": "not_contains", "value": "+32"}), Click, true),
        ("not_contains on array: some element", json!({"field": "phones", "op": "not_contains", "value": "+31 20"}), Click, false),
        ("not_contains on missing field", json!({"field": "no_such", "op": "not_contains", "value": "x"}), Click, true),
        ("starts_with", json!({"field": "zip", "op": "starts_with", "value": "1012"}), Click, true),
        ("starts_with other_field", json!({"field": "name", "op": "starts_with", "other_field": "no_such"}), Click, true),
        ("ends_with folds case", json!({"field": "zip", "op": "ends_with", "value": "ab"}), Click, true),
        ("ends_with case_sensitive", json!({"field": "zip", "op": "ends_with", "value": "ab", "case_sensitive": true}), Click, false),
        ("event starts_with", json!({"event": "mailing", "op": "starts_with", "value": "M-2026"}), Click, true),
        // less / more.
        ("less numeric by default", json!({"field": "age", "op": "less", "value": 50}), Click, true),
        ("more numeric by default", json!({"field": "age", "op": "more", "value": "100"}), Click, false),
        ("numbers compare as numbers, not text", json!({"field": "age", "op": "less", "value": "9"}), Click, false),
        ("more on text number field", json!({"field": "score", "op": "more", "value": 7}), Click, true),
        ("more other_field numeric", json!({"field": "age", "op": "more", "other_field": "max_age"}), Click, true),
        ("less other_field missing", json!({"field": "age", "op": "less", "other_field": "no_such"}), Click, false),
        ("less as text", json!({"field": "name", "op": "less", "value": "Zed"}), Click, true),
        ("more as text folds case", json!({"field": "name", "op": "more", "value": "a"}), Click, true),
        ("more as text case_sensitive", json!({"field": "name", "op": "more", "value": "a", "case_sensitive": true}), Click, false),
        ("less on missing field", json!({"field": "no_such", "op": "less", "value": 10}), Click, false),
        ("more numeric on non-number", json!({"field": "code", "op": "more", "value": 5, "numeric": true}), Click, false),
        ("less numeric", json!({"field": "score", "op": "less", "value": "7.6", "numeric": true}), Click, true),
        // regexp.
        ("regexp folds case", json!({"field": "zip", "op": "regexp", "value": "^\\d{4}[a-z]{2}$"}), Click, true),
        ("regexp case_sensitive", json!({"field": "zip", "op": "regexp", "value": "^\\d{4}[a-z]{2}$", "case_sensitive": true}), Click, false),
        ("regexp searches anywhere", json!({"field": "email", "op": "regexp", "value": "@example\\.com"}), Click, true),
        ("regexp on event, no match", json!({"event": "ip", "op": "regexp", "value": "^10\\."}), Click, false),
        ("regexp on missing field sees empty text", json!({"field": "no_such", "op": "regexp", "value": "^$"}), Click, true),
        // is_email / is_numeric / is_empty.
        ("is_email", json!({"field": "email", "op": "is_email"}), Click, true),
        ("is_email on a name", json!({"field": "name", "op": "is_email"}), Click, false),
        ("is_email on missing", json!({"field": "no_such", "op": "is_email"}), Click, false),
        ("is_numeric on number", json!({"field": "age", "op": "is_numeric"}), Click, true),
        ("is_numeric on numeric text", json!({"field": "score", "op": "is_numeric"}), Click, true),
        ("is_numeric on text", json!({"field": "code", "op": "is_numeric"}), Click, false),
        ("is_numeric on boolean", json!({"field": "vip", "op": "is_numeric"}), Click, false),
        ("is_empty on empty string", json!({"field": "empty", "op": "is_empty"}), Click, true),
        ("is_empty on null", json!({"field": "nothing", "op": "is_empty"}), Click, true),
        ("is_empty on missing", json!({"field": "no_such", "op": "is_empty"}), Click, true),
        ("is_empty on a name", json!({"field": "name", "op": "is_empty"}), Click, false),
        ("not is_empty", json!({"not": {"field": "name", "op": "is_empty"}}), Click, true),
        // before / after, absolute.
        ("after absolute date", json!({"field": "signup", "op": "after", "value": "2026-01-01"}), Click, true),
        ("before: equal moment is not before", json!({"field": "signup", "op": "before", "value": "2026-03-01 09:00:00"}), Click, false),
        ("after: equal moment is not after", json!({"field": "signup", "op": "after", "value": "2026-03-01T09:00:00Z"}), Click, false),
        ("before RFC 3339 with offset in data", json!({"field": "last_order", "op": "before", "value": "2025-12-24T18:00:00Z"}), Click, true),
        ("after RFC 3339 with offset in operand", json!({"field": "signup", "op": "after", "value": "2026-03-01T09:30:00+01:00"}), Click, true),
        ("before other_field", json!({"field": "signup", "op": "before", "other_field": "last_order"}), Click, false),
        ("after other_field", json!({"field": "signup", "op": "after", "other_field": "last_order"}), Click, true),
        ("date op on non-date", json!({"field": "name", "op": "before", "value": "now"}), Click, false),
        ("date op on missing", json!({"field": "no_such", "op": "before", "value": "+1d"}), Click, false),
        ("date op on missing is false for after too", json!({"field": "no_such", "op": "after", "value": "-100y"}), Click, false),
        // before / after, relative to NOW (2026-05-01 10:00 UTC).
        ("after -90d", json!({"field": "signup", "op": "after", "value": "-90d"}), Click, true),
        ("after -30d", json!({"field": "signup", "op": "after", "value": "-30d"}), Click, false),
        ("before -1M", json!({"field": "signup", "op": "before", "value": "-1M"}), Click, true),
        ("after -1y", json!({"field": "last_order", "op": "after", "value": "-1y"}), Click, true),
        ("before +1w", json!({"field": "last_order", "op": "before", "value": "+1w"}), Click, true),
        ("after -12h on a date 9 days back", json!({"subprofile_field": "ordered", "op": "after", "value": "-12h"}), Click, false),
        // ignore_year: birthdays.
        (
            "birthday today",
            json!({"all": [{"field": "birthdate", "op": "after", "value": "-1d", "ignore_year": true},
                           {"field": "birthdate", "op": "before", "value": "now", "ignore_year": true}]}),
            Click,
            true,
        ),
        (
            "birthday within the next week (it was today, so no)",
            json!({"all": [{"field": "birthdate", "op": "after", "value": "now", "ignore_year": true},
                           {"field": "birthdate", "op": "before", "value": "+7d", "ignore_year": true}]}),
            Click,
            false,
        ),
        ("after absolute ignoring year", json!({"field": "birthdate", "op": "after", "value": "2000-04-15", "ignore_year": true}), Click, true),
        ("after absolute with year", json!({"field": "birthdate", "op": "after", "value": "2000-04-15"}), Click, false),
        // subprofile fields.
        ("subprofile equals", json!({"subprofile_field": "product", "op": "equals", "value": "bike"}), Click, true),
        ("subprofile more numeric", json!({"subprofile_field": "price", "op": "more", "value": 500, "numeric": true}), Click, true),
        ("subprofile date relative", json!({"subprofile_field": "ordered", "op": "after", "value": "-30d"}), Click, true),
        ("subprofile other_field reads the subprofile", json!({"subprofile_field": "product", "op": "equals", "other_field": "product"}), Click, true),
        ("subprofile other_field does not read the profile", json!({"subprofile_field": "product", "op": "equals", "other_field": "name"}), Click, false),
        ("subprofile field missing without subprofile", json!({"subprofile_field": "product", "op": "is_empty"}), NoSubprofile, true),
        ("subprofile equals without subprofile", json!({"subprofile_field": "product", "op": "equals", "value": "bike"}), NoSubprofile, false),
        // event fields.
        ("event type", json!({"event": "type", "op": "equals", "value": "click"}), Click, true),
        ("event trigger", json!({"event": "trigger", "op": "equals", "value": "soap"}), Click, false),
        ("event nested header", json!({"event": "headers.User-Agent", "op": "contains", "value": "mozilla"}), Click, true),
        // interests.
        ("interest has folds case", json!({"interest": "vip", "op": "has"}), Click, true),
        ("interest has case_sensitive", json!({"interest": "vip", "op": "has", "case_sensitive": true}), Click, false),
        ("interest has_not", json!({"interest": "sports", "op": "has_not"}), Click, true),
        ("interest has_not when present", json!({"interest": "Newsletter", "op": "has_not"}), Click, false),
        ("interest equals is has", json!({"interest": "NEWSLETTER", "op": "equals"}), Click, true),
        ("interest starts_with", json!({"interest": "news", "op": "starts_with"}), Click, true),
        ("interest contains", json!({"interest": "letter", "op": "contains"}), Click, true),
        ("interest not_contains", json!({"interest": "vi", "op": "not_contains"}), Click, false),
        ("interest regexp", json!({"interest": "^vip$", "op": "regexp"}), Click, true),
        // tags.
        ("tag has", json!({"tag": "Black-Friday", "op": "has"}), Click, true),
        ("tag has_not when present", json!({"tag": "promo", "op": "has_not"}), Click, false),
        ("tag ends_with", json!({"tag": "friday", "op": "ends_with"}), Click, true),
        ("tag contains, no element", json!({"tag": "xmas", "op": "contains"}), Click, false),
        ("tag not_equals", json!({"tag": "xmas", "op": "not_equals"}), Click, true),
        ("tag regexp", json!({"tag": "^black-\\w+$", "op": "regexp"}), Click, true),
        // changed.
        ("changed: value differs", json!({"field": "name", "op": "changed"}), Update, true),
        ("changed: not in previous", json!({"field": "email", "op": "changed"}), Update, false),
        ("changed: listed but same value", json!({"field": "zip", "op": "changed"}), Update, false),
        ("changed: any field of a new profile", json!({"field": "email", "op": "changed"}), Create, true),
        ("changed: no previous state", json!({"field": "name", "op": "changed"}), Click, false),
        // gained / lost.
        ("gained", json!({"interest": "vip", "op": "gained"}), Update, true),
        ("gained: had it before", json!({"interest": "newsletter", "op": "gained"}), Update, false),
        ("gained: does not have it", json!({"interest": "sports", "op": "gained"}), Update, false),
        ("lost, folding case", json!({"interest": "old-interest", "op": "lost"}), Update, true),
        ("lost: still has it", json!({"interest": "newsletter", "op": "lost"}), Update, false),
        ("lost case_sensitive", json!({"interest": "old-interest", "op": "lost", "case_sensitive": true}), Update, false),
        ("gained on a new profile", json!({"interest": "vip", "op": "gained"}), Create, true),
        ("gained without previous state", json!({"interest": "vip", "op": "gained"}), Click, false),
        ("lost on a new profile", json!({"interest": "vip", "op": "lost"}), Create, false),
        // new_profile.
        ("new_profile on create", json!({"op": "new_profile"}), Create, true),
        ("new_profile on click", json!({"op": "new_profile"}), Click, false),
        ("not new_profile on update", json!({"not": {"op": "new_profile"}}), Update, true),
        // Groups.
        ("any: one of two", json!({"any": [{"field": "city", "op": "equals", "value": "Utrecht"}, {"event": "type", "op": "equals", "value": "click"}]}), Click, true),
        ("any: none", json!({"any": [{"field": "city", "op": "equals", "value": "Utrecht"}, {"event": "type", "op": "equals", "value": "open"}]}), Click, false),
        ("all: one false", json!({"all": [{"field": "city", "op": "equals", "value": "Amsterdam"}, {"event": "type", "op": "equals", "value": "open"}]}), Click, false),
        ("not all", json!({"not": {"all": [{"field": "city", "op": "equals", "value": "Amsterdam"}, {"event": "type", "op": "equals", "value": "open"}]}}), Click, true),
        (
            "deep nesting",
            json!({"any": [
                {"all": [{"op": "new_profile"}, {"field": "email", "op": "is_email"}]},
                {"all": [{"event": "action", "op": "equals", "value": "update"},
                         {"not": {"any": [{"interest": "vip", "op": "lost"}, {"field": "email", "op": "is_empty"}]}},
                         {"any": [{"field": "name", "op": "changed"}, {"interest": "vip", "op": "gained"}]}]}]}),
            Update,
            true,
        ),
        (
            "deep nesting, other world",
            json!({"any": [
                {"all": [{"op": "new_profile"}, {"field": "email", "op": "is_email"}]},
                {"all": [{"event": "action", "op": "equals", "value": "update"},
                         {"not": {"any": [{"interest": "vip", "op": "lost"}, {"field": "email", "op": "is_empty"}]}},
                         {"any": [{"field": "name", "op": "changed"}, {"interest": "vip", "op": "gained"}]}]}]}),
            Click,
            false,
        ),
        ("double negation", json!({"not": {"not": {"tag": "promo", "op": "has"}}}), Click, true),
    ];
    assert!(
        cases.len() >= 60,
        "the table must keep at least 60 cases, has {}",
        cases.len()
    );

    let fixture = Fixture::new();
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, cond, world, expected)| eval(&fixture, cond, *world) != *expected)
        .map(|(name, cond, world, expected)| {
            format!("{name}: {cond} in {world:?} should be {expected}")
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Nests `leaf` inside `levels` `not` groups.
fn nested_nots(levels: usize) -> Value {
    (0..levels).fold(
        json!({"field": "name", "op": "is_empty"}),
        |inner, _| json!({"not": inner}),
    )
}

#[test]
fn invalid_table() {
    let inner_path = "/not".repeat(32);
    let many_leaves: Vec<Value> = (0..1001).map(|_| json!({"op": "new_profile"})).collect();
    let many_regexes: Vec<Value> = (0..101)
        .map(|_| json!({"tag": "^x", "op": "regexp"}))
        .collect();
    let long_pattern = "a".repeat(1001);
    #[rustfmt::skip]
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"all": [{"field": "name", "op": "is_empty"},
                           {"any": [{"field": "name", "op": "contians", "value": "x"}]}]}),
            "/all/1/any/0/op",
            "unknown operator \"contians\" (did you mean \"contains\"?); expected one of equals, not_equals",
        ),
        (json!({"field": "name", "op": "equals", "valeu": "x"}), "/valeu", "unknown key \"valeu\" (did you mean \"value\"?)"),
        (json!({"alll": []}), "/alll", "unknown key \"alll\" (did you mean \"all\"?)"),
        (json!({"field": "name", "op": "has"}), "/op", "operator \"has\" does not apply to \"field\"; valid operators for \"field\": equals"),
        (json!({"field": "name", "op": "gained"}), "/op", "operator \"gained\" does not apply to \"field\""),
        (json!({"event": "type", "op": "changed"}), "/op", "operator \"changed\" does not apply to \"event\""),
        (json!({"tag": "x", "op": "lost"}), "/op", "operator \"lost\" does not apply to \"tag\""),
        (json!({"interest": "x", "op": "before", "value": "now"}), "/op", "operator \"before\" does not apply to \"interest\""),
        (json!({"op": "equals", "value": "x"}), "/", "operator \"equals\" needs a subject"),
        (json!({"field": "name", "value": "x"}), "/", "missing \"op\""),
        (json!({"field": "name", "op": 3}), "/op", "\"op\" must be a string"),
        (json!({"field": "name", "tag": "x", "op": "has"}), "/tag", "a leaf reads one subject"),
        (json!({"field": "", "op": "is_empty"}), "/field", "must be a non-empty string"),
        (json!({"field": "name", "op": "new_profile"}), "/field", "\"new_profile\" takes no subject"),
        (json!({"op": "new_profile", "value": "x"}), "/value", "takes no \"value\""),
        (json!({"op": "new_profile", "case_sensitive": true}), "/case_sensitive", "does not apply"),
        (json!({"any": [{"field": "name", "op": "contains"}]}), "/any/0", "operator \"contains\" needs \"value\" or \"other_field\""),
        (json!({"field": "name", "op": "equals", "value": "x", "other_field": "y"}), "/", "either \"value\" or \"other_field\", not both"),
        (json!({"field": "name", "op": "equals", "other_field": ""}), "/other_field", "non-empty field name"),
        (json!({"field": "name", "op": "equals", "value": null}), "/value", "must be a string, number or boolean"),
        (json!({"field": "name", "op": "equals", "value": ["a"]}), "/value", "must be a string, number or boolean, found an array"),
        (json!({"field": "name", "op": "is_empty", "value": "x"}), "/value", "operator \"is_empty\" takes no \"value\""),
        (json!({"field": "name", "op": "changed", "other_field": "x"}), "/other_field", "takes no \"other_field\""),
        (json!({"interest": "vip", "op": "has", "value": "vip"}), "/value", "compares against the name in \"interest\""),
        (json!({"field": "signup", "op": "before", "value": "-30x"}), "/value", "invalid relative time \"-30x\""),
        (json!({"field": "signup", "op": "before", "value": "30d"}), "/value", "a relative time needs a sign"),
        (json!({"field": "signup", "op": "after", "value": "2026-02-30"}), "/value", "invalid date \"2026-02-30\""),
        (json!({"field": "signup", "op": "after", "value": 20260101}), "/value", "a date must be a string"),
        (json!({"field": "signup", "op": "after", "value": "+2000y"}), "/value", "further than 1000 years"),
        (json!({"field": "zip", "op": "regexp", "value": "(ab"}), "/value", "invalid regular expression: unclosed group"),
        (json!({"tag": "[x", "op": "regexp"}), "/tag", "invalid regular expression"),
        (json!({"field": "zip", "op": "regexp", "value": long_pattern}), "/value", "1001 characters long; at most 1000"),
        (json!({"field": "zip", "op": "regexp", "value": "\\w{500}"}), "/value", "invalid regular expression"),
        (json!({"field": "zip", "op": "regexp", "other_field": "x"}), "/other_field", "\"other_field\" is not supported"),
        (json!({"field": "zip", "op": "regexp"}), "/", "needs a pattern in \"value\""),
        (json!({"all": []}), "/all", "empty \"all\" group"),
        (json!({"not": {"any": []}}), "/not/any", "empty \"any\" group"),
        (json!({"all": {"field": "x", "op": "is_empty"}}), "/all", "takes an array of conditions"),
        (json!({"not": [{"field": "x", "op": "is_empty"}]}), "/not", "takes one condition object"),
        (json!({"all": [null]}), "/all/0", "expected a condition object"),
        (json!([{"field": "x", "op": "is_empty"}]), "/", "expected a condition object"),
        (json!({"all": [{"field": "x", "op": "is_empty"}], "any": []}), "/any", "a group object holds exactly one key"),
        (nested_nots(33), &inner_path, "nest deeper than 32"),
        (json!({"any": many_leaves}), "/any/1000", "too many leaves"),
        (json!({"any": many_regexes}), "/any/100/tag", "too many regular expressions"),
        (json!({"field": "age", "op": "equals", "value": "abc", "numeric": true}), "/value", "\"abc\" is not a number"),
        (json!({"field": "name", "op": "contains", "value": "x", "numeric": true}), "/numeric", "\"numeric\" does not apply to operator \"contains\""),
        (json!({"interest": "vip", "op": "equals", "numeric": true}), "/numeric", "does not apply"),
        (json!({"field": "name", "op": "equals", "value": "x", "ignore_year": true}), "/ignore_year", "does not apply"),
        (json!({"field": "name", "op": "is_email", "case_sensitive": true}), "/case_sensitive", "does not apply to operator \"is_email\""),
        (json!({"field": "name", "op": "equals", "value": "x", "case_sensitive": "yes"}), "/case_sensitive", "must be true or false"),
        (json!({"field": "age", "op": "less", "value": 3, "numeric": true, "case_sensitive": true}), "/case_sensitive", "no effect on a numeric comparison"),
        (json!({"field": "a", "op": "is_empty", "we/ird~": 1}), "/we~1ird~0", "unknown key"),
    ];
    assert!(cases.len() >= 15);

    let mut failures = Vec::new();
    for (cond, path, fragment) in &cases {
        match Condition::parse(cond) {
            Ok(_) => failures.push(format!("{cond}: parsed, expected an error at {path}")),
            Err(e) if e.path() != *path || !e.message().contains(fragment) => failures.push(
                format!("{cond}:\n  got      {e}\n  expected {path}: …{fragment}…"),
            ),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn error_displays_path_then_message() {
    let err = Condition::parse(&json!({"all": [{"field": "name", "op": "is_empty"},
                                               {"any": [{"field": "name", "op": "contians", "value": "x"}]}]}))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("/all/1/any/0/op: unknown operator \"contians\""),
        "{text}"
    );
    assert!(
        text.contains("expected one of equals, not_equals, contains"),
        "{text}"
    );
    assert!(!text.contains('\n'), "errors stay on one line: {text}");
}

#[test]
fn regex_errors_stay_on_one_line() {
    let err =
        Condition::parse(&json!({"field": "zip", "op": "regexp", "value": "a)"})).unwrap_err();
    assert_eq!(err.path(), "/value");
    assert!(!err.to_string().contains('\n'), "{err}");
    assert!(
        err.message().starts_with("invalid regular expression: "),
        "{err}"
    );
}

#[test]
fn limits_are_inclusive() {
    assert!(
        Condition::parse(&nested_nots(32)).is_ok(),
        "32 levels are allowed"
    );
    let leaves: Vec<Value> = (0..1000).map(|_| json!({"op": "new_profile"})).collect();
    assert!(
        Condition::parse(&json!({"all": leaves})).is_ok(),
        "1000 leaves are allowed"
    );
    let regexes: Vec<Value> = (0..100)
        .map(|_| json!({"tag": "^x", "op": "regexp"}))
        .collect();
    assert!(
        Condition::parse(&json!({"any": regexes})).is_ok(),
        "100 patterns are allowed"
    );
    let pattern = "a".repeat(1000);
    assert!(Condition::parse(&json!({"field": "x", "op": "regexp", "value": pattern})).is_ok());
}

#[test]
fn common_patterns_fit_the_regex_size_limit() {
    for pattern in [
        "^\\w+@\\w+\\.\\w+$",
        "^[\\p{L} '-]+$",
        "^\\d{4} ?[a-z]{2}$",
        "^(?:\\+31|0)[1-9][0-9]{8}$",
        "\\b(?:black|cyber)[- ]?(?:friday|monday)\\b",
    ] {
        let result = Condition::parse(&json!({"field": "x", "op": "regexp", "value": pattern}));
        assert!(result.is_ok(), "{pattern}: {result:?}");
    }
}

#[test]
fn null_is_always_true_and_nothing_else_is() {
    let fixture = Fixture::new();
    let always = Condition::parse(&Value::Null).unwrap();
    assert!(always.is_always_true());
    assert!(always.evaluate(&fixture.ctx(World::Click)));
    assert!(Condition::default().is_always_true());
    let leaf = Condition::parse(&json!({"field": "name", "op": "is_empty"})).unwrap();
    assert!(!leaf.is_always_true());
    assert!(!leaf.evaluate(&fixture.ctx(World::Click)));
}

#[test]
fn false_flags_are_accepted_anywhere() {
    let c = Condition::parse(&json!({"field": "name", "op": "is_email", "case_sensitive": false, "numeric": false, "ignore_year": false}))
        .unwrap();
    assert!(!c.evaluate(&Fixture::new().ctx(World::Click)));
}

#[test]
fn relative_dates_follow_now() {
    let fixture = Fixture::new();
    let c = Condition::parse(&json!({"field": "signup", "op": "after", "value": "-30d"})).unwrap();
    let mut ctx = fixture.ctx(World::Click);
    assert!(
        !c.evaluate(&ctx),
        "signup 2026-03-01 is more than 30 days before 2026-05-01"
    );
    ctx.now = datetime!(2026-03-15 00:00 UTC);
    assert!(
        c.evaluate(&ctx),
        "signup 2026-03-01 is within 30 days of 2026-03-15"
    );
}

#[test]
fn ignore_year_birthday_across_years() {
    // "Birthday today" stays true in every year the person has a birthday on May 1st.
    let fixture = Fixture::new();
    let c = Condition::parse(&json!({"all": [
        {"field": "birthdate", "op": "after", "value": "-1d", "ignore_year": true},
        {"field": "birthdate", "op": "before", "value": "now", "ignore_year": true}]}))
    .unwrap();
    let mut ctx = fixture.ctx(World::Click);
    for (now, expected) in [
        (datetime!(2030-05-01 09:00 UTC), true),
        (datetime!(2031-05-01 23:59 UTC), true),
        (datetime!(2030-05-02 09:00 UTC), false),
        (datetime!(2030-04-30 09:00 UTC), false),
    ] {
        ctx.now = now;
        assert_eq!(c.evaluate(&ctx), expected, "now = {now}");
    }
}

#[test]
fn parsed_conditions_are_shareable() {
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    assert_traits::<Condition>();
    assert_traits::<ConditionError>();

    let c = Condition::parse(&json!({"field": "zip", "op": "regexp", "value": "^1012"})).unwrap();
    let copy = c.clone();
    let fixture = Fixture::new();
    let ctx = fixture.ctx(World::Click);
    assert_eq!(c.evaluate(&ctx), copy.evaluate(&ctx));
    assert!(copy.evaluate(&ctx));
}

#[test]
fn parsing_is_deterministic_and_reports_the_first_mistake() {
    // Two mistakes: the first leaf's unknown op is reported, not the second leaf's.
    let cond = json!({"all": [{"field": "a", "op": "nope"}, {"field": "b", "op": "has"}]});
    let first: ConditionError = Condition::parse(&cond).unwrap_err();
    let second = Condition::parse(&cond).unwrap_err();
    assert_eq!(first, second);
    assert_eq!(first.path(), "/all/0/op");
}

#[test]
fn documented_examples_parse() {
    // Every JSON example in the language reference must be a valid condition, so the doc
    // cannot drift from the parser: the ```json blocks and the inline examples in table rows.
    let doc = include_str!("../../../docs/conditions.md");
    let mut examples: Vec<Value> = Vec::new();
    let mut in_json = false;
    let mut block = String::new();
    for line in doc.lines() {
        if line.trim() == "```json" {
            in_json = true;
        } else if in_json && line.trim() == "```" {
            in_json = false;
            for v in serde_json::Deserializer::from_str(&block).into_iter::<Value>() {
                examples.push(v.unwrap_or_else(|e| panic!("bad JSON in doc block {block}: {e}")));
            }
            block.clear();
        } else if in_json {
            block.push_str(line);
            block.push('\n');
        } else if line.starts_with('|') {
            for span in line.split('`').skip(1).step_by(2) {
                // The groups table shows schemas (`{"all": [c1, c2, ...]}`), and the text-form
                // table shapes with placeholders (`{"all": [a, b, c]}`), not examples: a span
                // that is not JSON and holds a bare placeholder is one. Any other span that is
                // not JSON fails below.
                let placeholder = serde_json::from_str::<Value>(span).is_err()
                    && span
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| matches!(w, "a" | "b" | "c"));
                let schematic = span.contains("...") || span.ends_with(" c}") || placeholder;
                if span.starts_with("{\"") && !schematic {
                    let v = serde_json::from_str(span)
                        .unwrap_or_else(|e| panic!("bad JSON in doc row {span}: {e}"));
                    examples.push(v);
                }
            }
        }
    }
    assert!(
        examples.len() >= 30,
        "found only {} examples",
        examples.len()
    );
    for example in &examples {
        if let Err(e) = Condition::parse(example) {
            panic!("documented example {example} does not parse: {e}");
        }
    }
}
