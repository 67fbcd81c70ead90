//! Development aid: does SQLite's JSON keep every f64 exact? (It decides how `list_runs`
//! passes metric values.)
#![allow(clippy::unwrap_used)]
use sqlx::Row;
#[tokio::main]
async fn main() {
    let s = auspex_store::SqliteStore::memory().await.unwrap();
    let pool = s.pool_for_tests();
    sqlx::query("CREATE TABLE v (x REAL)").execute(pool).await.unwrap();
    let vals: Vec<f64> = (0..20000u64)
        .map(|i| {
            f64::from_bits(0x3FE0_0000_0000_0000 | (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 12))
        })
        .chain([1e-300, 123_456_789.123_456_79, 0.1, 1.0 / 3.0])
        .collect();
    for v in &vals {
        sqlx::query("INSERT INTO v VALUES (?1)").bind(v).execute(pool).await.unwrap();
    }
    for q in
        ["SELECT json_group_array(x) FROM v", "SELECT json_group_array(printf('%!.17g', x)) FROM v"]
    {
        let r = sqlx::query(q).fetch_one(pool).await.unwrap();
        let j: &str = r.get(0);
        let back: Vec<serde_json::Value> = serde_json::from_str(j).unwrap();
        let bad = back
            .iter()
            .zip(&vals)
            .filter(|(b, v)| {
                let f = match b {
                    serde_json::Value::String(s) => s.parse::<f64>().unwrap(),
                    b => b.as_f64().unwrap(),
                };
                f != **v
            })
            .count();
        println!("{q}: {bad} of {} differ", vals.len());
    }
}
