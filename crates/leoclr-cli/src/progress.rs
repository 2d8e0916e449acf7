/// A progress bar in the CLI's one style; `template` is indicatif's, hidden when `quiet`.
pub fn bar(
    len: usize,
    prefix: impl Into<String>,
    template: &str,
    quiet: bool,
) -> indicatif::ProgressBar {
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len as u64)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.into());
    pb
}

/// Embeds bank and test with progress bars (hidden when `quiet`) and scores them.
pub fn evaluate(
    encoder: &leoclr_core::Encoder,
    bank: &std::sync::Arc<leoclr_data::Dataset>,
    test: &std::sync::Arc<leoclr_data::Dataset>,
    aug: &leoclr_data::AugmentConfig,
    device: &burn::tensor::Device,
    opts: leoclr_core::eval::EvalOptions,
    quiet: bool,
) -> leoclr_core::Result<leoclr_core::eval::Scores> {
    let style = "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec}";
    let bars = [
        bar(bank.len(), "embed bank", style, quiet),
        bar(test.len(), "embed test", style, quiet),
    ];
    let s = leoclr_core::eval::evaluate(encoder, bank, test, aug, device, opts, &mut |w, d, _| {
        let pb = &bars[usize::from(w == "test")];
        pb.set_position(d as u64);
    })?;
    bars.iter().for_each(|b| b.finish_and_clear());
    Ok(s)
}
