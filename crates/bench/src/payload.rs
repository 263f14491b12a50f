//! Section 2, payload encoding. Each delivery's body is encoded once in the subscription's
//! format; this shows that cost next to the signature every attempt pays.

use std::hint::black_box;
use std::time::Duration;

use hookline_model::Enriched;
use hookline_payload::Format;

use crate::signing::SigningCeiling;
use crate::table::{pct, Row};
use crate::timing::{best_of, ROUNDS};

const SECTION: &str = "payload";

/// Encodes `event`'s body in every format for `budget` each, best of [`ROUNDS`].
pub fn run(budget: Duration, event: &Enriched, ceiling: &SigningCeiling) -> Vec<Row> {
    let mut encoders: Vec<Box<dyn FnMut()>> = Format::ALL
        .into_iter()
        .map(|format| -> Box<dyn FnMut()> {
            Box::new(move || {
                black_box(hookline_payload::encode(format, black_box(&event.body)));
            })
        })
        .collect();
    let mut ops: Vec<&mut dyn FnMut()> = encoders.iter_mut().map(|b| &mut **b as _).collect();
    let rates = best_of(ROUNDS, budget, &mut ops);
    Format::ALL
        .into_iter()
        .zip(rates)
        .map(|(format, rate)| {
            let bytes = hookline_payload::encode(format, &event.body).len();
            Row::num(
                SECTION,
                format!("encode {format}, enriched click ({bytes} B)"),
                rate,
                "enc/s/core",
            )
            .vs(format!(
                "costs {} of one signature",
                pct(ceiling.cavage_per_core, rate)
            ))
        })
        .collect()
}
