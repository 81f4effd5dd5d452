//! What a render costs on Fargate, for the line `lew render` prints at the end: task-seconds
//! times the task's vCPU and memory, at Fargate's per-second prices.
//!
//! Prices: Fargate On-Demand, Linux/x86, per hour, as published for US East (N. Virginia) and
//! read on [`PRICES_READ`] (the AWS Fargate pricing page, as quoted by vantage.sh's and
//! wring.co's 2026 Fargate pricing guides: $0.04048 per vCPU-hour, $0.004445 per GB-hour).
//! Other regions cost up to a third more; lew has no table for them, so their figure is the
//! US East one and says so. Fargate Spot is billed at a discount that moves with the market
//! (AWS quotes "up to 70%"): lew shows 70% off as an estimate. Fargate bills from the image pull
//! to the task's end, at least a minute per task; lew counts the seconds the workers spent on
//! this render's jobs, plus, as an upper bound, the idle time `worker.idle_s` adds per worker.

use serde::Serialize;

/// When the prices below were read.
pub const PRICES_READ: &str = "2026-12-04";
/// The region whose prices lew carries.
pub const PRICED_REGION: &str = "us-east-1";
const VCPU_HOUR_USD: f64 = 0.04048;
const GB_HOUR_USD: f64 = 0.004445;
/// Fargate Spot's discount, as an estimate ("up to 70%").
const SPOT_DISCOUNT: f64 = 0.70;

/// The cost of some task time, in US dollars.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Estimate {
    /// The dollars per task-hour of this task size.
    pub usd_per_task_hour: f64,
    /// The region whose prices were used (lew's table has one).
    pub priced_as: &'static str,
    /// Whether the figure is an estimate beyond rounding: another region, or Spot.
    pub estimate: bool,
    pub prices_read: &'static str,
}

impl Estimate {
    /// Fargate's price for a task of `cpu` units (1024 a vCPU) and `memory_mb`, in `region`.
    pub fn fargate(cpu: u32, memory_mb: u32, region: &str, spot: bool) -> Estimate {
        let vcpu = f64::from(cpu) / 1024.0;
        let gb = f64::from(memory_mb) / 1024.0;
        let mut per_hour = vcpu * VCPU_HOUR_USD + gb * GB_HOUR_USD;
        if spot {
            per_hour *= 1.0 - SPOT_DISCOUNT;
        }
        Estimate {
            usd_per_task_hour: per_hour,
            priced_as: PRICED_REGION,
            estimate: spot || region != PRICED_REGION,
            prices_read: PRICES_READ,
        }
    }

    /// The dollars for `seconds` of task time.
    pub fn usd(&self, seconds: f64) -> f64 {
        self.usd_per_task_hour * seconds / 3600.0
    }
}

/// Dollars as a user reads them: `about $0.03`, `about $1.20`, or `less than $0.01`.
pub fn dollars(usd: f64) -> String {
    if usd < 0.005 {
        "less than $0.01".to_string()
    } else {
        format!("about ${usd:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_worker_costs_what_fargate_charges() {
        // 1 vCPU, 2 GB: 0.04048 + 2 × 0.004445 = $0.04937 an hour.
        let e = Estimate::fargate(1024, 2048, "us-east-1", false);
        assert!((e.usd_per_task_hour - 0.04937).abs() < 1e-9);
        assert!(!e.estimate);
        assert!((e.usd(3600.0) - 0.04937).abs() < 1e-9);
        let spot = Estimate::fargate(1024, 2048, "us-east-1", true);
        assert!((spot.usd_per_task_hour - 0.04937 * 0.3).abs() < 1e-9);
        assert!(spot.estimate);
        assert!(Estimate::fargate(1024, 2048, "eu-west-1", false).estimate);
    }

    #[test]
    fn dollars_read_like_dollars() {
        assert_eq!(dollars(0.031), "about $0.03");
        assert_eq!(dollars(12.0), "about $12.00");
        assert_eq!(dollars(0.001), "less than $0.01");
    }
}
