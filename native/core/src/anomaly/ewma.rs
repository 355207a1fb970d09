//! EWMA volatility of log returns (RiskMetrics style).

use super::{AnomalyFields, Detector, DetectorConfig, DetectorError, DetectorKind, LastPrice};
use crate::types::{fixed_to_f64, Arrival, SCALE};
use serde::{Deserialize, Serialize};

/// EWMA volatility: `z = r / sqrt(var_prev)` with a zero mean.
///
/// After at least M returns, a trade is anomalous when `var_prev > 0` and `|z| ≥ T`; then
/// `var = λ·var + (1 − λ)·r²`. The first return seeds `var = r²` (starting from 0 would make
/// the first M variances biased low by a factor `1 − λ^n`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    config: DetectorConfig,
    last: LastPrice,
    var: f64,
    count: u64,
}

impl Ewma {
    /// Creates an EWMA detector.
    ///
    /// # Errors
    /// [`DetectorError::Config`] when the configuration is out of range.
    pub fn new(config: DetectorConfig) -> Result<Ewma, DetectorError> {
        config.validate()?;
        Ok(Ewma::with_valid_config(DetectorConfig {
            kind: DetectorKind::Ewma,
            ..config
        }))
    }

    pub(super) fn with_valid_config(config: DetectorConfig) -> Ewma {
        Ewma {
            config,
            last: LastPrice::default(),
            var: 0.0,
            count: 0,
        }
    }

    /// Current variance estimate (before the next return).
    pub fn variance(&self) -> f64 {
        self.var
    }
}

impl Detector for Ewma {
    #[inline]
    fn observe(&mut self, price: i64, _time_ns: i64, _arrival: Arrival) -> Option<AnomalyFields> {
        let (prev, r) = self.last.step(price)?;
        let t = self.config.threshold;
        let mut out = None;
        if self.count >= self.config.min_samples as u64
            && self.var > 0.0
            && r * r >= t * t * self.var * (1.0 - 1e-9)
        {
            let std = self.var.sqrt();
            let z = r / std;
            if z.abs() >= t {
                out = Some(AnomalyFields {
                    price: fixed_to_f64(price),
                    prev_price: prev / SCALE as f64,
                    ret: r,
                    zscore: z,
                    mean: 0.0,
                    std,
                });
            }
        }
        let l = self.config.lambda;
        self.var = if self.count == 0 {
            r * r
        } else {
            l * self.var + (1.0 - l) * r * r
        };
        self.count = self.count.saturating_add(1);
        out
    }

    fn name(&self) -> &'static str {
        DetectorKind::Ewma.as_str()
    }

    fn config(&self) -> &DetectorConfig {
        &self.config
    }

    fn samples(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    fn validate(&self) -> Result<(), DetectorError> {
        self.config.validate()?;
        if self.config.kind != DetectorKind::Ewma {
            return Err(DetectorError::State("configuration is not ewma"));
        }
        if !(self.last.is_valid() && self.var.is_finite() && self.var >= 0.0) {
            return Err(DetectorError::State("invalid previous price or variance"));
        }
        Ok(())
    }
}
