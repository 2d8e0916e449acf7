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

/// The terminal's view of a run's event stream: a bar per epoch, a line per finished epoch.
/// `leoclr train` and every row of `leoclr compare` show their runs through it.
pub struct RunBars {
    prefix: String,
    bar: Option<indicatif::ProgressBar>,
    epochs: usize,
    steps_per_epoch: usize,
    /// Print a line per finished epoch.
    pub epoch_lines: bool,
    /// The last finished epoch's kNN, when it was evaluated.
    pub last_knn: Option<f32>,
    /// The last epoch's record.
    pub last: Option<leoclr_core::run::EpochRecord>,
}

impl RunBars {
    /// Bars named `prefix` (empty: "epoch i/n").
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            bar: None,
            epochs: 0,
            steps_per_epoch: 0,
            epoch_lines: true,
            last_knn: None,
            last: None,
        }
    }

    fn new_bar(&self, epoch: usize) -> indicatif::ProgressBar {
        let style = "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}";
        let prefix = match self.prefix.is_empty() {
            true => format!("epoch {}/{}", epoch + 1, self.epochs),
            false => format!("{} {}/{}", self.prefix, epoch + 1, self.epochs),
        };
        bar(self.steps_per_epoch, prefix, style, false)
    }

    pub fn on_event(&mut self, ev: &leoclr_core::run::RunEvent) {
        use leoclr_core::run::RunEvent;
        match ev {
            RunEvent::Started(info) => {
                self.epochs = info.epochs;
                self.steps_per_epoch = info.steps_per_epoch;
                self.bar = Some(self.new_bar(info.epoch));
            }
            RunEvent::Step(e) => {
                if let Some(pb) = &self.bar {
                    pb.set_position(e.step_in_epoch as u64);
                    if let Some(l) = e.loss {
                        pb.set_message(format!(
                            "loss {l:.4} lr {:.4} {:.0} img/s",
                            e.lr, e.images_per_s
                        ));
                    }
                }
            }
            RunEvent::Evaluating(what, done, total) => {
                if let Some(pb) = &self.bar {
                    pb.set_message(format!("kNN: embedding {what} {done}/{total}"));
                }
            }
            RunEvent::Epoch(r) => {
                if let Some(pb) = self.bar.take() {
                    pb.finish_and_clear();
                }
                if self.epoch_lines {
                    println!(
                        "{}epoch {}/{}: loss {:.4}, lr {:.4}, {:.1} images/s{}",
                        match self.prefix.is_empty() {
                            true => String::new(),
                            false => format!("{} ", self.prefix),
                        },
                        r.epoch,
                        self.epochs,
                        r.loss,
                        r.lr,
                        r.images_per_s,
                        r.knn_top1
                            .map(|k| format!(", kNN top-1 {:.2}%", 100.0 * k))
                            .unwrap_or_default()
                    );
                }
                self.last_knn = r.knn_top1;
                self.last = Some(r.clone());
                if r.epoch < self.epochs {
                    self.bar = Some(self.new_bar(r.epoch));
                }
            }
            RunEvent::Done(_) | RunEvent::Failed(_) => {
                if let Some(pb) = self.bar.take() {
                    pb.finish_and_clear();
                }
            }
        }
    }
}
