use super::test_support::*;
use super::*;
use crate::types::{Side, SCALE};
use proptest::prelude::*;

fn key(t: i64, seq: u64, ord: u32) -> TradeKey {
    TradeKey::new(t, Arrival { seq, ord })
}

fn apply(book: &mut BarBook, t: &OwnedTrade) -> (TradeEffect, Vec<Bar>) {
    let mut closed = Vec::new();
    let e = book.apply_trade(
        t.price,
        t.qty,
        key(t.time_ns, t.seq, t.ord),
        0,
        true,
        &mut closed,
    );
    (e, closed)
}

fn book_of(trades: &[OwnedTrade]) -> BarBook {
    let mut b = BarBook::default();
    for t in trades {
        apply(&mut b, t);
    }
    b
}

#[test]
fn spec_parse_and_names() {
    for s in BarSpec::ALL {
        assert_eq!(BarSpec::parse(s.as_str()).unwrap(), s);
        assert_eq!(s.as_str().parse::<BarSpec>().unwrap(), s);
        assert_eq!(BarSpec::from_index(s.index()), Some(s));
    }
    assert_eq!(BarSpec::parse("60m").unwrap(), BarSpec::H1);
    assert_eq!(BarSpec::parse("300s").unwrap(), BarSpec::M5);
    assert_eq!(BarSpec::M5.width_ns(), 5 * MIN);
    assert_eq!(
        (BarSpec::M5.step(), BarSpec::M5.unit()),
        (5, TimeUnit::Minute)
    );
    assert!(matches!(
        BarSpec::parse("2m"),
        Err(BarError::UnsupportedSpec(_))
    ));
    for bad in ["", "m", "1", "1x", "-1m", "1.5m", "99999999999h"] {
        assert!(
            matches!(BarSpec::parse(bad), Err(BarError::BadSpec(_))),
            "{bad}"
        );
    }
}

#[test]
fn bar_is_compact() {
    assert_eq!(std::mem::size_of::<Bar>(), 168);
}

#[test]
fn alignment_handles_negative_times_and_exact_boundaries() {
    assert_eq!(BarSpec::M1.align(-1), -MIN);
    assert_eq!(BarSpec::M1.align(-MIN), -MIN);
    assert_eq!(BarSpec::M1.align(-MIN - 1), -2 * MIN);
    assert_eq!(BarSpec::M1.align(0), 0);
    assert_eq!(BarSpec::M1.align(MIN - 1), 0);
    assert_eq!(BarSpec::M1.align(MIN), MIN);
    assert_eq!(BarSpec::H1.align(T0 + 3_599 * SEC), T0);

    let mut book = BarBook::default();
    for (i, t) in [-1, -MIN, 0, MIN - 1, MIN].into_iter().enumerate() {
        apply(&mut book, &tr("X", 1.0, t, i as u64));
    }
    let starts: Vec<i64> = book.iter(BarSpec::M1).map(Bar::start_ns).collect();
    assert_eq!(starts, vec![-MIN, 0, MIN]);
    let counts: Vec<u32> = book.iter(BarSpec::M1).map(Bar::trades).collect();
    assert_eq!(counts, vec![2, 2, 1]);
    let h: Vec<i64> = book.iter(BarSpec::H1).map(Bar::start_ns).collect();
    assert_eq!(h, vec![-3_600 * SEC, 0]);
}

#[test]
fn open_and_close_break_time_ties_by_arrival() {
    let mut book = BarBook::default();
    let t = T0 + 10 * SEC;
    // Same event time; arrival (seq 5) comes first, (seq 3) later, then (seq 3, ord 1).
    let a = OwnedTrade {
        seq: 5,
        ..tr("X", 10.0, t, 5)
    };
    let b = OwnedTrade {
        seq: 3,
        ..tr("X", 11.0, t, 3)
    };
    let c = OwnedTrade {
        ord: 1,
        ..tr("X", 12.0, t, 3)
    };
    for x in [&a, &b, &c] {
        apply(&mut book, x);
    }
    let bar = book.iter(BarSpec::M1).next().unwrap();
    assert_eq!(bar.open(), Some(b.price), "smallest (time, seq, ord) opens");
    assert_eq!(
        bar.close(),
        Some(a.price),
        "largest (time, seq, ord) closes"
    );
    assert_eq!(bar.open_key(), Some(key(t, 3, 0)));
    assert_eq!(bar.close_key(), Some(key(t, 5, 0)));
    assert_eq!((bar.high(), bar.low()), (Some(c.price), Some(a.price)));
    // An earlier event time arriving last still opens.
    apply(&mut book, &tr("X", 9.0, t - SEC, 99));
    let bar = book.iter(BarSpec::M1).next().unwrap();
    assert_eq!(bar.open(), Some(9 * SCALE));
    assert_eq!(bar.close(), Some(a.price));
    assert_eq!(bar.last_event_ns(), Some(t));
}

#[test]
fn bar_sums_and_vwap() {
    let mut book = BarBook::default();
    let mut a = tr("X", 10.0, T0, 0);
    a.qty = 2 * SCALE;
    let b = tr("X", 13.0, T0 + SEC, 1);
    apply(&mut book, &a);
    let mut closed = Vec::new();
    book.apply_trade(b.price, b.qty, key(b.time_ns, 1, 0), 777, true, &mut closed);
    let bar = book.iter(BarSpec::M1).next().unwrap();
    assert_eq!(bar.volume(), 3 * i128::from(SCALE));
    assert_eq!(
        bar.notional(),
        (20 + 13) * i128::from(SCALE) * i128::from(SCALE)
    );
    assert_eq!(bar.vwap(), Some(11.0));
    assert_eq!(bar.trades(), 2);
    assert_eq!(bar.last_update_ns(), 777);
}

#[test]
fn a_bar_may_hold_orders_without_trades() {
    let mut book = BarBook::default();
    let mut closed = Vec::new();
    book.apply_order(Side::Buy, 5, T0, 0, true, &mut closed);
    book.apply_order(Side::Sell, 7, T0 + SEC, 0, true, &mut closed);
    book.apply_order(Side::Unknown, 9, T0 + SEC, 0, true, &mut closed);
    let bar = *book.iter(BarSpec::M1).next().unwrap();
    assert_eq!(
        (bar.open(), bar.high(), bar.low(), bar.close()),
        (None, None, None, None)
    );
    assert_eq!(bar.vwap(), None);
    assert_eq!(bar.last_event_ns(), None);
    assert_eq!(
        bar.order_flow(),
        OrderFlow {
            count: 3,
            buy_qty: 5,
            sell_qty: 7
        }
    );
    bar.check().unwrap();
    // Orders move the retention clock but do not close bars.
    assert_eq!(book.latest_trade_ns(), None);
    assert_eq!(book.latest_event_ns(), Some(T0 + SEC));
    book.apply_order(Side::Buy, 1, T0 + 10 * MIN, 0, true, &mut closed);
    assert!(closed.is_empty());
    // A trade then closes them.
    let (_, closed) = apply(&mut book, &tr("X", 1.0, T0 + 10 * MIN, 1));
    assert!(closed
        .iter()
        .any(|b| b.start_ns() == T0 && b.spec() == BarSpec::M1 && b.order_flow().count == 3));
}

#[test]
fn bars_close_by_event_time_after_grace() {
    let mut book = BarBook::default();
    apply(&mut book, &tr("X", 1.0, T0 + 30 * SEC, 0));
    let (_, closed) = apply(&mut book, &tr("X", 1.0, T0 + MIN + SEC, 1));
    assert!(closed.is_empty(), "still within grace");
    let (_, closed) = apply(&mut book, &tr("X", 1.0, T0 + MIN + 2 * SEC, 2));
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].spec(), closed[0].start_ns()), (BarSpec::M1, T0));
    assert!(closed[0].is_closed() && !closed[0].is_revised());
    assert!(book.get(BarSpec::M1, T0).unwrap().is_closed());
    assert!(!book.get(BarSpec::M1, T0 + MIN).unwrap().is_closed());
    assert!(!book.get(BarSpec::M5, T0).unwrap().is_closed());
    // Jumping an hour closes the 1m, 5m and 1h bars once each.
    let (_, closed) = apply(&mut book, &tr("X", 1.0, T0 + 3_600 * SEC + 5 * SEC, 3));
    let specs: Vec<BarSpec> = closed.iter().map(Bar::spec).collect();
    assert_eq!(specs, vec![BarSpec::M1, BarSpec::M5, BarSpec::H1]);
}

#[test]
fn wall_clock_closing_is_opt_in_and_grace_aware() {
    let mut book = BarBook::default();
    apply(&mut book, &tr("X", 1.0, T0, 0));
    let mut closed = Vec::new();
    book.close_by_wall_clock(T0 + MIN + SEC, &mut closed);
    assert!(closed.is_empty());
    book.close_by_wall_clock(T0 + MIN + 2 * SEC, &mut closed);
    assert_eq!(closed.len(), 1);
    // A trade arriving now for the closed minute revises it.
    let (e, _) = apply(&mut book, &tr("X", 2.0, T0 + 59 * SEC, 1));
    assert_eq!(e, TradeEffect::Applied { revised: true });
    assert!(book.get(BarSpec::M1, T0).unwrap().is_revised());
}

#[test]
fn late_trades_revise_closed_bars_and_too_late_ones_are_rejected() {
    let day = 86_400 * SEC;
    let mut book = BarBook::default();
    apply(&mut book, &tr("X", 1.0, T0, 0));
    apply(&mut book, &tr("X", 1.0, T0 + 10 * MIN, 1));
    // Late into a closed 1m bar that exists.
    let (e, closed) = apply(&mut book, &tr("X", 3.0, T0 + SEC, 2));
    assert_eq!(e, TradeEffect::Applied { revised: true });
    assert!(closed.is_empty());
    let bar = book.get(BarSpec::M1, T0).unwrap();
    assert!(bar.is_revised() && bar.is_closed());
    assert_eq!(bar.trades(), 2);
    assert!(
        !book.get(BarSpec::H1, T0).unwrap().is_revised(),
        "the open hour is not revised"
    );
    // Late into a closed interval without a bar: born closed, revised and reported once.
    let (e, closed) = apply(&mut book, &tr("X", 4.0, T0 + 3 * MIN, 3));
    assert_eq!(e, TradeEffect::Applied { revised: true });
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].start_ns(), T0 + 3 * MIN);
    assert!(closed[0].is_closed() && closed[0].is_revised());
    assert_eq!(closed[0].close(), Some(4 * SCALE));
    // Move the clock 2 days: 1m retention (24 h) no longer covers T0, 5m (7 d) does.
    apply(&mut book, &tr("X", 1.0, T0 + 2 * day, 4));
    assert!(book.get(BarSpec::M1, T0).is_none());
    assert!(book.get(BarSpec::M5, T0).is_some());
    let (e, _) = apply(&mut book, &tr("X", 5.0, T0 + 2 * SEC, 5));
    assert_eq!(e, TradeEffect::Applied { revised: true });
    assert!(book.get(BarSpec::M1, T0).is_none(), "not applied to 1m");
    assert_eq!(book.get(BarSpec::M5, T0).unwrap().trades(), 4);
    // 31 days later T0 is outside every retention: too late, nothing changes.
    apply(&mut book, &tr("X", 1.0, T0 + 31 * day, 6));
    assert_eq!(
        apply(&mut book, &tr("X", 5.0, T0 + day / 2, 7)).0,
        TradeEffect::TooLate
    );
    assert!(book.too_late_before_ns() > T0 + day / 2);
    assert_eq!(
        apply(&mut book, &tr("X", 5.0, T0 + 2 * day, 7)).0,
        TradeEffect::Applied { revised: true }
    );
    assert_eq!(
        apply(&mut book, &tr("X", 5.0, MAX_TIME_NS + 1, 8)).0,
        TradeEffect::OutOfRange
    );
}

#[test]
fn retention_evicts_in_event_time_and_is_configurable() {
    let config = BarConfig {
        grace_ns: 0,
        retention_ns: [3 * MIN, 10 * MIN, 3_600 * SEC],
    };
    assert_eq!(config.retained_bars(BarSpec::M1), 3);
    let mut book = BarBook::new(config).unwrap();
    for m in 0..10 {
        apply(&mut book, &tr("X", 1.0, T0 + m * MIN + SEC, m as u64));
    }
    let starts: Vec<i64> = book
        .iter(BarSpec::M1)
        .map(|b| (b.start_ns() - T0) / MIN)
        .collect();
    assert_eq!(starts, vec![7, 8, 9]);
    let starts: Vec<i64> = book
        .iter(BarSpec::M5)
        .map(|b| (b.start_ns() - T0) / MIN)
        .collect();
    assert_eq!(starts, vec![0, 5]);
    // Minute 6 is outside 1m retention but inside 5m: applied to 5m and 1h only.
    let (e, _) = apply(&mut book, &tr("X", 2.0, T0 + 6 * MIN, 100));
    assert_eq!(e, TradeEffect::Applied { revised: false });
    assert_eq!(book.iter(BarSpec::M1).count(), 3);
    assert_eq!(book.get(BarSpec::M5, T0 + 5 * MIN).unwrap().trades(), 6);
    // Retention never exceeds the configured number of bars.
    for m in 10..200 {
        apply(&mut book, &tr("X", 1.0, T0 + m * MIN, 200 + m as u64));
        assert!(book.iter(BarSpec::M1).len() <= 3);
        assert!(book.iter(BarSpec::M5).len() <= 2);
    }
    assert!(BarBook::new(BarConfig {
        grace_ns: -1,
        ..config
    })
    .is_err());
    assert!(BarBook::new(BarConfig {
        retention_ns: [SEC, 10 * MIN, 3_600 * SEC],
        ..config
    })
    .is_err());
}

#[test]
fn query_returns_newest_limit_oldest_first_with_forming_bar() {
    let mut book = BarBook::default();
    for m in 0..10 {
        apply(&mut book, &tr("X", 1.0 + m as f64, T0 + m * MIN, m as u64));
    }
    let q = book.bars(BarSpec::M1, T0, T0 + 10 * MIN, 3);
    let starts: Vec<i64> = q.iter().map(|b| (b.start_ns() - T0) / MIN).collect();
    assert_eq!(starts, vec![7, 8, 9]);
    // Latest trade 9:00, grace 2 s: minute 7 is closed, minute 8 within grace, 9 forming.
    assert!(q[0].is_closed() && !q[1].is_closed() && !q[2].is_closed());
    let q = book.bars(BarSpec::M1, T0 + 2 * MIN, T0 + 5 * MIN, 100);
    let starts: Vec<i64> = q.iter().map(|b| (b.start_ns() - T0) / MIN).collect();
    assert_eq!(starts, vec![2, 3, 4]);
    assert!(book.bars(BarSpec::M1, T0, T0 + 10 * MIN, 0).is_empty());
    assert!(book.bars(BarSpec::M1, T0 + 5 * MIN, T0, 10).is_empty());
    assert_eq!(book.bars(BarSpec::H1, i64::MIN, i64::MAX, 10).len(), 1);
}

#[test]
fn check_rejects_intervals_outside_the_time_range_without_overflow() {
    for index in [i32::MAX, i32::MIN] {
        assert!(Bar::empty(BarSpec::H1, index, 0).check().is_err());
    }
    assert!(Bar::empty(BarSpec::H1, 0, 0).check().is_ok());
}

#[test]
fn bar_merge_rejects_different_intervals() {
    let mut book = BarBook::default();
    apply(&mut book, &tr("X", 1.0, T0, 0));
    apply(&mut book, &tr("X", 1.0, T0 + MIN, 1));
    let bars: Vec<Bar> = book.iter(BarSpec::M1).copied().collect();
    let mut a = bars[0];
    assert_eq!(a.merge(&bars[1]), Err(BarError::MergeMismatch));
    let h = *book.iter(BarSpec::H1).next().unwrap();
    assert_eq!(a.merge(&h), Err(BarError::MergeMismatch));
    let mut sub = bars[0];
    assert_eq!(
        sub.roll_up(&h),
        Err(BarError::MergeMismatch),
        "cannot roll a larger bar into a smaller one"
    );
}

fn assert_matches_naive(book: &BarBook, trades: &[OwnedTrade], orders: &[OwnedOrder]) {
    for spec in BarSpec::ALL {
        let expected: Vec<NaiveBar> = naive_bars(trades, orders, spec).into_values().collect();
        let actual: Vec<NaiveBar> = book.iter(spec).map(bar_values).collect();
        assert_eq!(actual, expected, "{spec}");
        let latest_trade = trades.iter().map(|t| t.time_ns).max();
        for b in book.iter(spec) {
            let closed_by_clock =
                latest_trade.is_some_and(|l| l >= b.end_ns() + book.config().grace_ns);
            assert_eq!(b.is_closed(), closed_by_clock, "{spec} {}", b.start_ns());
            b.check().unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn book_matches_naive_computation(trades in arb_trades(200)) {
        let book = book_of(&trades);
        assert_matches_naive(&book, &trades, &[]);
    }

    #[test]
    fn rolled_up_one_minute_bars_equal_five_minute_and_hour_bars(trades in arb_trades(300)) {
        let book = book_of(&trades);
        for spec in [BarSpec::M5, BarSpec::H1] {
            for big in book.iter(spec) {
                let mut acc: Option<Bar> = None;
                for m in book.iter(BarSpec::M1).filter(|m| m.start_ns() >= big.start_ns() && m.end_ns() <= big.end_ns()) {
                    match &mut acc {
                        None => {
                            let mut b = Bar::empty(big.spec(), big.index(), 0);
                            b.roll_up(m).unwrap();
                            acc = Some(b);
                        }
                        Some(a) => a.roll_up(m).unwrap(),
                    }
                }
                let acc = acc.expect("every big bar has minutes");
                prop_assert_eq!(bar_values(&acc), bar_values(big));
            }
        }
    }

    #[test]
    fn merge_is_exact_in_either_order_and_associative(
        trades in arb_trades(200),
        mask in prop::collection::vec(0u8..3, 200),
        orders in prop::collection::vec((0i64..4 * 3_600, 1i64..100, any::<bool>()), 0..20),
    ) {
        let orders: Vec<OwnedOrder> = orders
            .into_iter()
            .enumerate()
            .map(|(i, (dt, qty, buy))| OwnedOrder {
                symbol: "SYM".into(),
                side: if buy { Side::Buy } else { Side::Sell },
                qty,
                price: None,
                time_ns: T0 + dt * SEC,
                seq: i as u64,
            })
            .collect();
        let mut parts: [BarBook; 3] = Default::default();
        for (i, t) in trades.iter().enumerate() {
            apply(&mut parts[usize::from(mask[i])], t);
        }
        for (i, o) in orders.iter().enumerate() {
            let mut closed = Vec::new();
            parts[i % 3].apply_order(o.side, o.qty, o.time_ns, 0, true, &mut closed);
        }
        let mut ab_c = parts[0].clone();
        ab_c.merge(&parts[1]);
        ab_c.merge(&parts[2]);
        let mut c_ba = parts[2].clone();
        let mut ba = parts[1].clone();
        ba.merge(&parts[0]);
        c_ba.merge(&ba);
        let mut a_bc = parts[0].clone();
        let mut bc = parts[1].clone();
        bc.merge(&parts[2]);
        a_bc.merge(&bc);
        for merged in [&ab_c, &c_ba, &a_bc] {
            // Closing uses the trade clock, which orders do not move; every order here lies
            // within the trades' time span, so the naive rule above still applies.
            assert_matches_naive(merged, &trades, &orders);
        }
    }
}
