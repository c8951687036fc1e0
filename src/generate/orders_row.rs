//! The `orders` row (Postgres `public.orders`) and its two column spellings: RPCN's (numeric padded
//! to scale, RFC3339Nano `Z`, nulls written, deletes with only the key) and the Bento substitute's.

use super::json::{decimal_padded, decimal_unpadded, Style, J};
use super::rng::Rng;

pub(super) const STATUSES: &[&str] = &["pending", "paid", "packed", "shipped", "delivered"];
const NOTES: &[&str] = &[
    "<b>gift</b> wrap & ribbon",
    "Leave at door > back gate",
    "Café “Zoë” & Co — 2nd floor",
    "call before delivery\nring twice",
    "plain note",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Lyon", "FR", "69002"),
    ("Leeds", "GB", "LS1 4AP"),
    ("Boston", "US", "02110"),
];

#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) id: i64,
    pub(super) customer_id: i64,
    pub(super) status: usize,
    pub(super) total_cents: i64,
    pub(super) discount_cents: Option<i64>,
    pub(super) currency: &'static str,
    pub(super) note: Option<&'static str>,
    pub(super) city: usize,
    pub(super) items: Vec<(u64, u64, &'static str)>,
    pub(super) gift: bool,
    pub(super) big_ref: bool,
    pub(super) created_ns: i64,
    pub(super) updated_ns: i64,
    pub(super) shipped_ns: Option<i64>,
}

/// Postgres keeps microseconds.
fn micros(ns: i64) -> i64 {
    ns - ns.rem_euclid(1000)
}

impl Row {
    pub(super) fn new(rng: &mut Rng, id: i64, big_ref: bool, commit_ns: i64) -> Self {
        let items = (0..rng.range(1, 4))
            .map(|_| {
                (
                    rng.range(100, 999),
                    rng.range(1, 5),
                    rng.pick(&["19.50", "4.99", "120.00", "7.25"]),
                )
            })
            .collect();
        Self {
            id,
            customer_id: rng.range_i64(100, 9_000),
            status: 0,
            total_cents: rng.range_i64(500, 250_000),
            discount_cents: rng.chance(30).then(|| rng.range_i64(100, 2_000)),
            currency: rng.pick(&["EUR", "USD", "GBP"]),
            note: rng.chance(50).then(|| rng.pick(NOTES)),
            city: rng.index(CITIES.len()),
            items,
            gift: rng.chance(20),
            big_ref,
            created_ns: micros(commit_ns),
            updated_ns: micros(commit_ns),
            shipped_ns: None,
        }
    }

    pub(super) fn updated(&self, rng: &mut Rng, commit_ns: i64) -> Self {
        let mut next = self.clone();
        next.status = (self.status + 1).min(STATUSES.len() - 1);
        if rng.chance(25) {
            next.total_cents = rng.range_i64(500, 250_000);
        }
        if rng.chance(20) {
            next.note = rng.chance(60).then(|| rng.pick(NOTES));
        }
        next.updated_ns = micros(commit_ns);
        if STATUSES[next.status] == "shipped" && next.shipped_ns.is_none() {
            next.shipped_ns = Some(micros(commit_ns));
        }
        next
    }

    fn shipping(&self) -> J {
        let (city, country, zip) = CITIES[self.city];
        let items = self.items.iter().map(|(sku, qty, price)| {
            J::Obj(vec![
                ("sku", J::Str(format!("SKU-{sku:05}"))),
                ("qty", J::Num(qty.to_string())),
                ("unit_price", J::Num((*price).into())),
            ])
        });
        let mut members = vec![
            (
                "address",
                J::Obj(vec![
                    (
                        "line1",
                        J::Str(format!("{} Rue <Haute> & Fils", self.id % 90 + 1)),
                    ),
                    ("city", J::Str(city.into())),
                    ("country", J::Str(country.into())),
                    ("zip", J::Str(zip.into())),
                ]),
            ),
            ("items", J::Arr(items.collect())),
            ("gift", J::Bool(self.gift)),
            ("weight_kg", J::Num("1.250".into())),
        ];
        if self.big_ref {
            // A carrier tracking number stored as a JSON number: beyond 2^53.
            members.push(("external_ref", J::Num("12345678901234567891".into())));
        }
        J::Obj(members)
    }

    pub(super) fn columns(
        &self,
        style: Style,
        ts: impl Fn(i64) -> String,
        deleted: bool,
    ) -> Vec<(&'static str, J)> {
        let dec = |units: i64| {
            J::Str(if style == Style::Go {
                decimal_padded(units, 2)
            } else {
                decimal_unpadded(units, 2)
            })
        };
        let mut cols = vec![("id", J::Num(self.id.to_string()))];
        if deleted {
            // Default replica identity: only the key is known; every other column is null.
            for name in [
                "customer_id",
                "status",
                "total",
                "discount",
                "currency",
                "note",
                "shipping",
                "created_at",
                "updated_at",
                "shipped_at",
            ] {
                cols.push((name, J::Null));
            }
            return cols;
        }
        cols.extend([
            ("customer_id", J::Num(self.customer_id.to_string())),
            ("status", J::Str(STATUSES[self.status].into())),
            ("total", dec(self.total_cents)),
            ("discount", self.discount_cents.map_or(J::Null, dec)),
            ("currency", J::Str(self.currency.into())),
            ("note", self.note.map_or(J::Null, |n| J::Str(n.into()))),
            ("shipping", self.shipping()),
            ("created_at", J::Str(ts(self.created_ns))),
            ("updated_at", J::Str(ts(self.updated_ns))),
            (
                "shipped_at",
                self.shipped_ns.map_or(J::Null, |t| J::Str(ts(t))),
            ),
        ]);
        cols
    }
}
