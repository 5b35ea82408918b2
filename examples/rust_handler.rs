//! A program that embeds stepstream and answers Task states with its own Rust code.
//!
//! Run it with `cargo run --example rust_handler`. It runs a small order check: a Rust
//! handler prices the items, a second one fails for an unknown coupon, and the state
//! machine's Catch turns that error into a regular result.

use stepstream::compile::plan::Plan;
use stepstream::exec::{execute_blocking, ClockMode, ExecOptions};
use stepstream::json;
use stepstream::tasks::{TaskError, Tasks};
use stepstream::value::Value;

const DEFINITION: &str = r#"{
  "StartAt": "Price",
  "States": {
    "Price": {
      "Type": "Task",
      "Resource": "rust:price",
      "ResultPath": "$.total",
      "Next": "ApplyCoupon"
    },
    "ApplyCoupon": {
      "Type": "Task",
      "Resource": "rust:coupon",
      "Parameters": {"total.$": "$.total", "coupon.$": "$.coupon"},
      "ResultPath": "$.total",
      "Catch": [{"ErrorEquals": ["UnknownCoupon"], "ResultPath": "$.couponError", "Next": "Done"}],
      "Next": "Done"
    },
    "Done": {"Type": "Succeed"}
  }
}"#;

/// Sums price * qty over `items`.
async fn price(input: Value) -> Result<Value, TaskError> {
    let items = input["items"]
        .as_array()
        .ok_or_else(|| TaskError::new("BadOrder", "items must be a list"))?;
    let total: f64 = items
        .iter()
        .map(|i| i["price"].as_f64().unwrap_or(0.0) * i["qty"].as_f64().unwrap_or(0.0))
        .sum();
    Ok(json!(total))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let definition: Value = serde_json::from_str(DEFINITION)?;
    let plan = Plan::load(&definition).map_err(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        text.join("\n")
    })?;

    let mut tasks = Tasks::new();
    // A plain async fn...
    tasks.register_fn("rust:price", price);
    // ...or a closure; an Err is a task error that Retry and Catch see by name.
    tasks.register_fn("rust:coupon", |input: Value| async move {
        let total = input["total"].as_f64().unwrap_or(0.0);
        match input["coupon"].as_str() {
            Some("TEN") => Ok(json!(total * 0.9)),
            other => Err(TaskError::new(
                "UnknownCoupon",
                format!("no coupon {:?}", other.unwrap_or_default()),
            )),
        }
    });

    for coupon in ["TEN", "BOGUS"] {
        let input = json!({
            "items": [{"price": 20.0, "qty": 2}, {"price": 5.0, "qty": 1}],
            "coupon": coupon,
        });
        let outcome = execute_blocking(
            &plan,
            input,
            &tasks,
            &ExecOptions::default(),
            ClockMode::Real,
        );
        println!("{}", outcome.to_json());
    }
    Ok(())
}
