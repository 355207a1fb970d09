//! Rolling median / median absolute deviation of log returns.

use super::{
    AnomalyFields, Detector, DetectorConfig, DetectorError, DetectorKind, LastPrice, Window,
};
use crate::types::{fixed_to_f64, Arrival, SCALE};
use serde::{Deserialize, Serialize};

/// Consistency constant: MAD / 0.6745 estimates σ for normally distributed data.
const MAD_TO_Z: f64 = 0.6745;

/// Robust z-score: `z = 0.6745 · (r − median) / MAD` over the previous W log returns.
///
/// After at least M returns, a trade is anomalous when `MAD > 0` and `|z| ≥ T`. O(W) per
/// trade (two `select_nth_unstable` passes over a scratch copy of the window); a median
/// cannot be maintained in O(1), and W is small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mad {
    config: DetectorConfig,
    last: LastPrice,
    pub(super) window: Window,
    /// Working copy for selection; not state.
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl PartialEq for Mad {
    fn eq(&self, other: &Self) -> bool {
        // The scratch buffer is working memory, not state.
        self.config == other.config && self.last == other.last && self.window == other.window
    }
}

impl Mad {
    /// Creates a median/MAD detector.
    ///
    /// # Errors
    /// [`DetectorError::Config`] when the configuration is out of range.
    pub fn new(config: DetectorConfig) -> Result<Mad, DetectorError> {
        config.validate()?;
        Ok(Mad::with_valid_config(DetectorConfig {
            kind: DetectorKind::Mad,
            ..config
        }))
    }

    pub(super) fn with_valid_config(config: DetectorConfig) -> Mad {
        Mad {
            config,
            last: LastPrice::default(),
            window: Window::new(config.window),
            scratch: Vec::new(),
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.window.memory_bytes() + self.scratch.capacity() * std::mem::size_of::<f64>()
    }
}

/// Median of a non-empty slice (mean of the two middle values for an even length); reorders it.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let k = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return upper;
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + upper) / 2.0
}

impl Detector for Mad {
    fn observe(&mut self, price: i64, _time_ns: i64, _arrival: Arrival) -> Option<AnomalyFields> {
        let (prev, r) = self.last.step(price)?;
        let mut out = None;
        if self.window.len() >= self.config.min_samples {
            self.scratch.clear();
            self.scratch.extend(self.window.iter());
            let med = median(&mut self.scratch);
            for x in &mut self.scratch {
                *x = (*x - med).abs();
            }
            let mad = median(&mut self.scratch);
            if mad > 0.0 {
                let z = MAD_TO_Z * (r - med) / mad;
                if z.abs() >= self.config.threshold {
                    out = Some(AnomalyFields {
                        price: fixed_to_f64(price),
                        prev_price: prev / SCALE as f64,
                        ret: r,
                        zscore: z,
                        mean: med,
                        std: mad / MAD_TO_Z,
                    });
                }
            }
        }
        self.window.push(r);
        out
    }

    fn name(&self) -> &'static str {
        DetectorKind::Mad.as_str()
    }

    fn config(&self) -> &DetectorConfig {
        &self.config
    }

    fn samples(&self) -> usize {
        self.window.len()
    }

    fn validate(&self) -> Result<(), DetectorError> {
        self.config.validate()?;
        if self.config.kind != DetectorKind::Mad || self.window.cap != self.config.window {
            return Err(DetectorError::State(
                "window does not match the configuration",
            ));
        }
        if !self.last.is_valid() || (self.last.0.is_none() && self.window.len() > 0) {
            return Err(DetectorError::State("invalid previous price"));
        }
        Ok(())
    }
}
