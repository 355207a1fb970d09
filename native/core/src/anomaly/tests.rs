use super::log_ratio;
use super::mad::median;
use super::*;
use crate::bars::test_support::{random_walk, Rng};
use crate::types::SCALE;
use proptest::prelude::*;

const A: Arrival = Arrival { seq: 0, ord: 0 };

fn cfg(kind: DetectorKind) -> DetectorConfig {
    DetectorConfig {
        kind,
        ..DetectorConfig::default()
    }
}

/// Independent two-pass mean and sample std.
fn two_pass(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Prices of a random walk with occasional jumps of ±`jump` (log).
fn prices(n: usize, seed: u64, jump: f64) -> Vec<i64> {
    let mut rng = Rng::new(seed);
    let mut p: f64 = 250.0;
    (0..n)
        .map(|i| {
            let mut r = 0.001 * rng.normal();
            if i % 97 == 50 {
                r += if rng.unit() < 0.5 { jump } else { -jump };
            }
            p *= r.exp();
            (p * SCALE as f64).round() as i64
        })
        .collect()
}

#[test]
fn zscore_matches_an_independent_two_pass_computation() {
    let c = DetectorConfig {
        window: 100,
        min_samples: 30,
        threshold: 4.0,
        ..cfg(DetectorKind::ZScore)
    };
    let mut d = ZScore::new(c).unwrap();
    let ps = prices(5_000, 7, 0.02);
    let mut returns: Vec<f64> = Vec::new();
    let (mut flagged, mut expected_flags) = (0, 0);
    for (i, &p) in ps.iter().enumerate() {
        let window = &returns[returns.len().saturating_sub(100)..];
        if window.len() >= 2 {
            let (mean, std) = two_pass(window);
            let s = d.stats().unwrap();
            assert_eq!(s.n, window.len());
            assert!(
                (s.std - std).abs() <= 1e-9 * std,
                "std at {i}: {} vs {std}",
                s.std
            );
            assert!(
                (s.mean - mean).abs() <= 1e-9 * std.max(mean.abs()),
                "mean at {i}"
            );
        }
        let got = d.observe(p, 0, A);
        if i > 0 {
            let r = (ps[i] as f64 / ps[i - 1] as f64).ln();
            if window.len() >= 30 {
                let (mean, std) = two_pass(window);
                let z = (r - mean) / std;
                // Skip knife-edge cases that rounding may decide either way.
                if (z.abs() - 4.0).abs() > 1e-6 {
                    let expect = std > 0.0 && z.abs() >= 4.0;
                    assert_eq!(got.is_some(), expect, "trade {i}: z = {z}");
                    expected_flags += usize::from(expect);
                }
                if let Some(f) = got {
                    assert!((f.zscore - z).abs() <= 1e-9 * z.abs());
                    assert!((f.ret - r).abs() <= 1e-15);
                    assert_eq!(f.price, ps[i] as f64 / SCALE as f64);
                }
            } else {
                assert!(got.is_none(), "fewer than M returns");
            }
            returns.push(r);
        }
        flagged += usize::from(got.is_some());
    }
    assert!(flagged >= 40, "planted jumps are found ({flagged})");
    assert_eq!(flagged, expected_flags);
}

#[test]
fn zscore_ignores_flat_windows_and_bad_prices() {
    let mut d = ZScore::new(DetectorConfig {
        min_samples: 2,
        ..cfg(DetectorKind::ZScore)
    })
    .unwrap();
    for _ in 0..10 {
        assert!(d.observe(100 * SCALE, 0, A).is_none());
    }
    // std = 0: never an anomaly, however large the move.
    assert!(d.observe(200 * SCALE, 0, A).is_none());
    assert!(d.observe(0, 0, A).is_none());
    assert!(d.observe(-5, 0, A).is_none());
    assert_eq!(d.samples(), 10);
}

#[test]
fn ewma_flags_a_spike_against_its_volatility() {
    let c = DetectorConfig {
        min_samples: 5,
        ..cfg(DetectorKind::Ewma)
    };
    let mut d = Ewma::new(c).unwrap();
    let mut p = 100.0f64;
    for i in 0..50 {
        p *= if i % 2 == 0 { 1.001 } else { 1.0 / 1.001 };
        assert!(d.observe((p * SCALE as f64) as i64, 0, A).is_none());
    }
    let var = d.variance();
    assert!(
        (var - 1.001f64.ln().powi(2)).abs() < 1e-8,
        "variance converges to r²: {var}"
    );
    let spike = p * 1.01;
    let f = d
        .observe((spike * SCALE as f64) as i64, 0, A)
        .expect("spike");
    assert_eq!(f.mean, 0.0);
    assert!((f.zscore - f.ret / var.sqrt()).abs() < 1e-9);
    assert!(f.zscore > 9.0);
    // The variance absorbs the spike: λ·var + (1 − λ)·r².
    let expect = 0.94 * var + 0.06 * f.ret * f.ret;
    assert!((d.variance() - expect).abs() < 1e-15);
}

#[test]
fn mad_is_robust_to_an_outlier_in_its_window() {
    let c = DetectorConfig {
        window: 50,
        min_samples: 30,
        threshold: 5.0,
        ..cfg(DetectorKind::Mad)
    };
    let mut d = Mad::new(c).unwrap();
    let mut rng = Rng::new(3);
    let mut p = 100.0f64;
    let mut flagged = 0;
    for i in 0..400 {
        let r = 0.001 * rng.normal() + if i == 200 || i == 201 { 0.05 } else { 0.0 };
        p *= r.exp();
        if let Some(f) = d.observe((p * SCALE as f64) as i64, 0, A) {
            flagged += 1;
            assert!(f.zscore.abs() >= 5.0);
            assert!((f.zscore - (f.ret - f.mean) / f.std).abs() < 1e-9);
        }
    }
    // Both spikes are flagged: the first does not inflate the MAD for the second.
    assert_eq!(flagged, 2);
}

#[test]
fn median_of_odd_and_even_lengths() {
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&mut [5.0]), 5.0);
    assert!(median(&mut []).is_nan());
}

#[test]
fn kinds_configs_and_factory() {
    for k in [DetectorKind::ZScore, DetectorKind::Ewma, DetectorKind::Mad] {
        assert_eq!(DetectorKind::parse(k.as_str()).unwrap(), k);
        let d = by_name(k.as_str(), &DetectorConfig::default()).unwrap();
        assert_eq!(d.name(), k.as_str());
        assert_eq!(d.config().kind, k);
    }
    assert_eq!(
        DetectorKind::parse(" ZScore ").unwrap(),
        DetectorKind::ZScore
    );
    assert!(matches!(
        by_name("arima", &DetectorConfig::default()),
        Err(DetectorError::UnknownKind(_))
    ));
    let base = DetectorConfig::default();
    for bad in [
        DetectorConfig { window: 1, ..base },
        DetectorConfig {
            min_samples: 1,
            ..base
        },
        DetectorConfig {
            min_samples: 101,
            ..base
        },
        DetectorConfig {
            threshold: 0.0,
            ..base
        },
        DetectorConfig {
            threshold: f64::NAN,
            ..base
        },
        DetectorConfig {
            lambda: 1.0,
            ..base
        },
    ] {
        assert!(AnyDetector::new(&bad).is_err(), "{bad:?}");
    }
    // ewma ignores the window, so M may exceed it.
    assert!(AnyDetector::new(&DetectorConfig {
        min_samples: 500,
        ..cfg(DetectorKind::Ewma)
    })
    .is_ok());
}

#[test]
fn per_symbol_overrides_apply_on_top_of_the_default() {
    let mut s = DetectorSettings::default();
    s.overrides.insert(
        "BTC-USD".into(),
        DetectorOverride {
            kind: Some(DetectorKind::Mad),
            threshold: Some(6.0),
            ..DetectorOverride::default()
        },
    );
    assert_eq!(s.for_symbol("ETH-USD"), DetectorConfig::default());
    let btc = s.for_symbol("BTC-USD");
    assert_eq!(
        (btc.kind, btc.threshold, btc.window),
        (DetectorKind::Mad, 6.0, 100)
    );
    s.validate().unwrap();
    s.overrides.insert(
        "X".into(),
        DetectorOverride {
            window: Some(10),
            ..DetectorOverride::default()
        },
    );
    assert!(s.validate().is_err(), "window 10 < default min_samples 30");
}

#[test]
fn state_round_trips_and_continues_identically() {
    let trades = random_walk("X", 700, 11, 0.002);
    for kind in [DetectorKind::ZScore, DetectorKind::Ewma, DetectorKind::Mad] {
        let mut d = AnyDetector::new(&cfg(kind)).unwrap();
        for t in &trades[..350] {
            d.observe(t.price, t.time_ns, A);
        }
        let bytes = d.export_state().unwrap();
        let mut e = AnyDetector::import_state(&bytes).unwrap();
        assert_eq!(e.export_state().unwrap(), bytes);
        for t in &trades[350..] {
            assert_eq!(
                d.observe(t.price, t.time_ns, A),
                e.observe(t.price, t.time_ns, A)
            );
        }
        assert_eq!(d.export_state().unwrap(), e.export_state().unwrap());
    }
}

#[test]
fn corrupted_state_is_rejected() {
    let mut d = AnyDetector::new(&DetectorConfig::default()).unwrap();
    d.observe(SCALE, 0, A);
    d.observe(2 * SCALE, 0, A);
    let bytes = d.export_state().unwrap();
    assert!(AnyDetector::import_state(&bytes[..bytes.len() - 1]).is_err());
    // A window whose capacity disagrees with the configuration.
    let AnyDetector::ZScore(z) = &d else {
        unreachable!()
    };
    let mut bad = z.clone();
    bad.window = Window::new(7);
    assert!(AnyDetector::ZScore(bad).validate().is_err());
}

proptest! {
    #[test]
    fn log_ratio_matches_ln(q in 1i64..10_000_000_000_000, move_bp in -5_000i64..5_000) {
        let p = (q as f64 * (1.0 + move_bp as f64 / 10_000.0)).round().max(1.0);
        let q = q as f64;
        // ln_1p of an exact difference: (p / q).ln() would lose ~1e-16 absolute to rounding p / q.
        let exact = ((p - q) / q).ln_1p();
        let got = log_ratio(p, q);
        prop_assert!((got - exact).abs() <= 4.0 * f64::EPSILON * exact.abs(), "{} vs {}", got, exact);
    }

    #[test]
    fn arbitrary_state_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = AnyDetector::import_state(&bytes);
    }

    #[test]
    fn window_keeps_the_last_w_values_in_order(xs in prop::collection::vec(-1e3f64..1e3, 0..50), cap in 2usize..10) {
        let mut w = Window::new(cap);
        for &x in &xs {
            w.push(x);
        }
        let expect: Vec<f64> = xs[xs.len().saturating_sub(cap)..].to_vec();
        prop_assert_eq!(w.iter().collect::<Vec<_>>(), expect);
    }
}
