//! # hello: the smallest Cairn workflow
//!
//! One activity, one durable timer, one output.

use cairn_sdk::prelude::*;

/// Greets `name` through an activity, after a short durable nap.
pub async fn hello(ctx: Ctx, name: String) -> Result<String, Failure> {
    let greeting = ctx.call(activity!(greet), &name).await?;
    ctx.sleep(Duration::from_millis(10)).await?;
    Ok(greeting)
}

/// The side effect: builds the greeting.
pub fn greet(_ctx: &ActivityCtx, name: String) -> Result<String, Failure> {
    Ok(format!("Hello, {name}!"))
}

cairn_sdk::component! {
    workflows: [hello],
    activities: [greet],
}
