//! What the centre tells people, and in which words: the notification texts, Chinese first and
//! English second. Pure: the facts in, subject and body out. Who receives what is decided where
//! the change happens (a lifecycle step, the detector, a rating), and the mail is written to the
//! outbox in the same transaction.

use serde::Serialize;

use super::Catalog;

/// The request a notice is about, as people know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// The request's number, e.g. `PT20261127-000123`.
    pub number: String,
    /// The matter or bundle, in Chinese.
    pub matter_zh: String,
    /// The matter or bundle, in English.
    pub matter_en: String,
}

impl About {
    /// Request `number` of the matter or bundle `code`, named as the catalog names it (the code
    /// itself when the catalog no longer has it).
    pub fn of(catalog: &Catalog, number: &str, code: &str) -> Self {
        let (matter_zh, matter_en) = match (catalog.matter(code), catalog.bundle(code)) {
            (Some(m), _) => (m.name_zh.clone(), m.name_en.clone()),
            (None, Some(b)) => (b.name_zh.clone(), b.name_en.clone()),
            (None, None) => (code.to_string(), code.to_string()),
        };
        Self {
            number: number.to_string(),
            matter_zh,
            matter_en,
        }
    }

    /// A working calendar, for the notices about it (it takes the request number's place).
    pub fn calendar(code: &str) -> Self {
        Self {
            number: code.to_string(),
            matter_zh: "工作日历".into(),
            matter_en: "working calendar".into(),
        }
    }
}

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// 受理: to the enterprise.
    Accepted,
    /// 不予受理, with the reason: to the enterprise.
    NotAccepted {
        /// Why.
        reason: String,
    },
    /// 补正: every missing item in one notice, to the enterprise.
    SupplementRequired {
        /// Every missing item.
        items: Vec<String>,
    },
    /// 延期 (Art. 42), with the reason: to the enterprise.
    ExtensionGranted {
        /// Working days added.
        days: u32,
        /// Why.
        reason: String,
    },
    /// 决定: approved or denied (with the reason), to the enterprise.
    Decided {
        /// Approved (准予) or not (不予).
        approved: bool,
        /// Why, for a denial.
        reason: Option<String>,
    },
    /// 办结: to the enterprise.
    Completed,
    /// Deemed accepted from receipt (Art. 32): no supplement notice in time; to the enterprise.
    DeemedAccepted {
        /// Receipt, local time, from which it counts as accepted.
        from: String,
    },
    /// A clock used its warning share: to the unit's supervisor.
    ClockWarning {
        /// Clock kind.
        clock: String,
        /// Unit it counts against.
        unit: String,
        /// Due time, local, `YYYY-MM-DD HH:MM`.
        due_at: String,
    },
    /// A clock ran out: to the unit's supervisor.
    ClockBreached {
        /// Clock kind.
        clock: String,
        /// Unit it counts against.
        unit: String,
        /// Due time, local, `YYYY-MM-DD HH:MM`.
        due_at: String,
    },
    /// 退单: a return awaits the service centre's arbitration.
    AwaitingArbitration {
        /// The unit that returned it.
        from_unit: String,
        /// Its reason.
        reason: String,
    },
    /// A bad rating opened a rectification case: to the unit's supervisor.
    RectificationOpened {
        /// The rating, 1 or 2.
        level: i32,
        /// The enterprise's comment.
        comment: String,
    },
    /// The rectification case closed: its outcome, to the enterprise.
    RectificationClosed {
        /// What was rectified.
        note: String,
    },
    /// 容缺后补: a deferred material is due soon (its clock warned), to the enterprise.
    MaterialDue {
        /// Material code.
        code: String,
        /// Material name.
        name: String,
        /// Due time, local, `YYYY-MM-DD HH:MM`.
        due_at: String,
    },
    /// A deferred material arrived: to the lead unit.
    MaterialSupplied {
        /// Material code.
        code: String,
        /// File name.
        name: String,
        /// Received at the window (else supplied online).
        received_at_window: bool,
    },
    /// The working calendar's horizon is near or passed: to the administrators, who must load
    /// the next year.
    CalendarHorizon {
        /// The calendar's code.
        calendar: String,
        /// Its last configured day, `YYYY-MM-DD`; `None` when no year is configured.
        last_day: Option<String>,
        /// Days from today to it (negative once passed).
        days_left: Option<i64>,
        /// The year to load.
        next_year: i32,
    },
    /// 统一预约: a booking confirmed or moved, or its reminder the working day before; to the
    /// enterprise's contact. `About::number` is the appointment's id.
    Appointment {
        /// Which of the three mails.
        stage: AppointmentStage,
        /// The counter, e.g. `A01 市场监管 1 号窗口（企业登记）`.
        counter: String,
        /// The slot, local time, `YYYY-MM-DD HH:MM–HH:MM`.
        slot: String,
        /// Where the portal downloads the booking's calendar entry (RFC 5545 `.ics`).
        calendar_path: String,
        /// How long before the slot it can no longer be cancelled or moved
        /// (`appointments.cutoff_minutes`).
        cutoff_minutes: u32,
    },
}

/// Which appointment mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStage {
    /// The booking is confirmed.
    Booked,
    /// The booking moved to another slot.
    Rescheduled,
    /// The slot is on the next working day.
    Reminder,
}

/// Chinese and English names of a clock kind.
fn clock_names(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "window_intake" => ("窗口受理时限", "window intake limit"),
        "supplement_notice" => ("一次性告知时限", "supplement notice limit"),
        "promised" => ("承诺时限", "promised limit"),
        "statutory" => ("法定时限", "statutory limit"),
        "delivery" => ("送达时限", "delivery limit"),
        "rectification_contact" => ("整改联系时限", "rectification contact limit"),
        "rectification" => ("整改时限", "rectification limit"),
        "material" => ("容缺材料补交时限", "deferred material limit"),
        _ => ("时限", "time limit"),
    }
}

impl Message {
    /// The stable kind, as stored and listed.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Accepted => "accepted",
            Message::NotAccepted { .. } => "not_accepted",
            Message::SupplementRequired { .. } => "supplement_required",
            Message::ExtensionGranted { .. } => "extension_granted",
            Message::Decided { approved: true, .. } => "approved",
            Message::Decided {
                approved: false, ..
            } => "denied",
            Message::Completed => "completed",
            Message::DeemedAccepted { .. } => "deemed_accepted",
            Message::ClockWarning { .. } => "clock_warning",
            Message::ClockBreached { .. } => "clock_breached",
            Message::AwaitingArbitration { .. } => "awaiting_arbitration",
            Message::RectificationOpened { .. } => "rectification_opened",
            Message::RectificationClosed { .. } => "rectification_closed",
            Message::MaterialDue { .. } => "material_due",
            Message::MaterialSupplied { .. } => "material_supplied",
            Message::CalendarHorizon { .. } => "calendar_horizon",
            Message::Appointment { stage, .. } => match stage {
                AppointmentStage::Booked => "appointment_booked",
                AppointmentStage::Rescheduled => "appointment_rescheduled",
                AppointmentStage::Reminder => "appointment_reminder",
            },
        }
    }

    /// Subject and plain-text body, Chinese first, English second.
    pub fn render(&self, about: &About) -> (String, String) {
        let n = &about.number;
        let (mz, me) = (&about.matter_zh, &about.matter_en);
        let (subject_zh, subject_en, zh, en) = match self {
            Message::Accepted => (
                "已受理".to_string(),
                "accepted".to_string(),
                format!("您的办件 {n}（{mz}）已受理，我们将在承诺时限内办理。"),
                format!(
                    "Your request {n} ({me}) has been accepted and will be handled within the promised time."
                ),
            ),
            Message::NotAccepted { reason } => (
                "不予受理".into(),
                "not accepted".into(),
                format!("您的办件 {n}（{mz}）不予受理。理由：{reason}"),
                format!("Your request {n} ({me}) was not accepted. Reason: {reason}"),
            ),
            Message::SupplementRequired { items } => {
                let list_zh: String = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| format!("\n  {}. {item}", i + 1))
                    .collect();
                (
                    "请补正材料".into(),
                    "materials required".into(),
                    format!(
                        "您的办件 {n}（{mz}）需要补正以下全部材料（一次性告知）：{list_zh}\n补齐后请通过原渠道提交。"
                    ),
                    format!(
                        "Your request {n} ({me}) needs every one of these items (one notice):{list_zh}\nPlease supply them through the same channel."
                    ),
                )
            }
            Message::ExtensionGranted { days, reason } => (
                "办理期限延长".into(),
                "time limit extended".into(),
                format!("您的办件 {n}（{mz}）经批准延长 {days} 个工作日。理由：{reason}"),
                format!(
                    "The time limit of your request {n} ({me}) was extended by {days} working days. Reason: {reason}"
                ),
            ),
            Message::Decided { approved: true, .. } => (
                "准予许可".into(),
                "approved".into(),
                format!("您的办件 {n}（{mz}）已作出准予决定。"),
                format!("Your request {n} ({me}) has been approved."),
            ),
            Message::Decided {
                approved: false,
                reason,
            } => {
                let reason = reason.as_deref().unwrap_or("-");
                (
                    "不予许可".into(),
                    "denied".into(),
                    format!("您的办件 {n}（{mz}）未获准予。理由：{reason}"),
                    format!("Your request {n} ({me}) has been denied. Reason: {reason}"),
                )
            }
            Message::DeemedAccepted { from } => (
                "视为受理".into(),
                "accepted (deemed)".into(),
                format!(
                    "您的办件 {n}（{mz}）未在五个工作日内收到一次性补正告知，依据《行政许可法》第三十二条，自收到申请之日（{from}）起即为受理。"
                ),
                format!(
                    "Your request {n} ({me}) received no supplement notice within five working days, so under Art. 32 of the Administrative Licensing Law it counts as accepted from its receipt ({from})."
                ),
            ),
            Message::Completed => (
                "已办结".into(),
                "completed".into(),
                format!("您的办件 {n}（{mz}）已办结。欢迎对本次服务作出评价（好差评）。"),
                format!(
                    "Your request {n} ({me}) is completed. You are welcome to rate the service."
                ),
            ),
            Message::ClockWarning {
                clock,
                unit,
                due_at,
            } => {
                let (kz, ke) = clock_names(clock);
                (
                    format!("{kz}预警"),
                    format!("{ke} warning"),
                    format!("办件 {n}（{mz}）的{kz}即将届满（{due_at}），责任单位：{unit}。"),
                    format!(
                        "The {ke} of request {n} ({me}) is about to run out ({due_at}); responsible unit: {unit}."
                    ),
                )
            }
            Message::ClockBreached {
                clock,
                unit,
                due_at,
            } => {
                let (kz, ke) = clock_names(clock);
                (
                    format!("{kz}已超期"),
                    format!("{ke} breached"),
                    format!(
                        "办件 {n}（{mz}）的{kz}已于 {due_at} 届满，尚未办结。责任单位：{unit}。"
                    ),
                    format!(
                        "The {ke} of request {n} ({me}) ran out at {due_at}; responsible unit: {unit}."
                    ),
                )
            }
            Message::AwaitingArbitration { from_unit, reason } => (
                "退单待协调".into(),
                "return awaiting arbitration".into(),
                format!("办件 {n}（{mz}）被 {from_unit} 退单，理由：{reason}。请协调改派。"),
                format!(
                    "Request {n} ({me}) was returned by {from_unit}: {reason}. Please arbitrate and re-route it."
                ),
            ),
            Message::RectificationOpened { level, comment } => (
                "差评整改".into(),
                "rectification after a bad rating".into(),
                format!(
                    "办件 {n}（{mz}）收到差评（{level} 分）：{comment}\n请于 1 个工作日内联系企业，15 个工作日内整改。"
                ),
                format!(
                    "Request {n} ({me}) was rated {level}: {comment}\nContact the enterprise within the contact limit and rectify within the rectification limit."
                ),
            ),
            Message::RectificationClosed { note } => (
                "差评整改结果".into(),
                "outcome of your rating".into(),
                format!("您对办件 {n}（{mz}）的评价已处理。整改情况：{note}"),
                format!("Your rating of request {n} ({me}) has been handled. Outcome: {note}"),
            ),
            Message::MaterialDue { code, name, due_at } => (
                "容缺材料即将到期".into(),
                "deferred material due soon".into(),
                format!(
                    "您的办件 {n}（{mz}）容缺受理的材料「{name}」（{code}）须于 {due_at} 前补交。请通过原渠道提交或到窗口递交；补齐前不予出件。"
                ),
                format!(
                    "The material \"{name}\" ({code}) that your request {n} ({me}) was accepted without is due by {due_at}. Please supply it online or at the window; the result is not handed over before it arrives."
                ),
            ),
            Message::MaterialSupplied {
                code,
                name,
                received_at_window,
            } => {
                let (how_zh, how_en) = if *received_at_window {
                    ("已在窗口收取", "was received at the window")
                } else {
                    ("已由企业在线补交", "was supplied online by the enterprise")
                };
                (
                    "容缺材料已补交".into(),
                    "deferred material supplied".into(),
                    format!("办件 {n}（{mz}）容缺受理的材料「{name}」（{code}）{how_zh}。"),
                    format!(
                        "The deferred material \"{name}\" ({code}) of request {n} ({me}) {how_en}."
                    ),
                )
            }
            Message::CalendarHorizon {
                calendar,
                last_day,
                days_left,
                next_year,
            } => {
                let (until_zh, until_en) = match (last_day, days_left) {
                    (Some(day), Some(left)) if *left >= 0 => (
                        format!("节假日安排只配置到 {day}（还剩 {left} 天）"),
                        format!("has holidays configured up to {day} ({left} days left)"),
                    ),
                    (Some(day), Some(left)) => (
                        format!("节假日安排只配置到 {day}（已过 {} 天）", -left),
                        format!("has holidays configured up to {day}, {} days ago", -left),
                    ),
                    _ => (
                        "没有配置任何年份的节假日安排".to_string(),
                        "has no year of holidays configured".to_string(),
                    ),
                };
                let path = format!("PUT /api/v1/calendars/{calendar}/years/{next_year}");
                (
                    format!("节假日安排即将用尽，请载入 {next_year} 年"),
                    format!("holidays run out: load {next_year}"),
                    format!(
                        "{mz} {calendar} {until_zh}。此后的到期时间均为暂定（provisional），只按周一至周五计算。\n请在国务院办公厅公布 {next_year} 年节假日安排后，通过 {path} 载入全年的节假日和调休上班日，正在计时的时限将随之重算。"
                    ),
                    format!(
                        "The {me} {calendar} {until_en}. Due times after it are provisional: they count weekdays only.\nOnce the State Council publishes the {next_year} holidays, load the whole year (holidays and working weekend days) with {path}; running clocks are recomputed."
                    ),
                )
            }
            Message::Appointment {
                stage,
                counter,
                slot,
                calendar_path,
                cutoff_minutes,
            } => {
                let (cutoff_zh, cutoff_en) = cutoff_text(*cutoff_minutes);
                let (subject_zh, subject_en, lead_zh, lead_en) = match stage {
                    AppointmentStage::Booked => {
                        ("预约成功", "appointment booked", "您已预约", "You booked")
                    }
                    AppointmentStage::Rescheduled => (
                        "预约已改期",
                        "appointment moved",
                        "您的预约已改到",
                        "Your appointment moved to",
                    ),
                    AppointmentStage::Reminder => (
                        "明日预约提醒",
                        "appointment reminder",
                        "提醒：您预约了",
                        "Reminder: you booked",
                    ),
                };
                (
                    subject_zh.to_string(),
                    subject_en.to_string(),
                    format!(
                        "{lead_zh} {slot}（北京时间）在区行政服务中心 {counter} 办理「{mz}」。预约号 {n}。\n请携带营业执照和办理所需材料，按时到窗口签到；开始前 {cutoff_zh}内不能取消或改期，未签到将记为爽约。\n日历文件（.ics）：在企业专属网页下载，或 GET {calendar_path}"
                    ),
                    format!(
                        "{lead_en} {slot} (Beijing time) at {counter} of the district service centre for \"{me}\". Appointment {n}.\nBring your business licence and the materials the matter needs and check in at the counter on time; within {cutoff_en} of the slot it can no longer be cancelled or moved, and a booking not checked in counts as a no-show.\nCalendar file (.ics): download it in the enterprise portal, or GET {calendar_path}"
                    ),
                )
            }
        };
        (
            format!("【马上办】{n} {subject_zh} / {subject_en}"),
            format!(
                "{zh}\n\n{en}\n\n——\n普陀区政务服务中心 马上办\nPutuo District Government Service Centre\n"
            ),
        )
    }
}

/// The cancellation cutoff in words: whole hours as hours, else minutes.
fn cutoff_text(minutes: u32) -> (String, String) {
    match minutes {
        m if m >= 60 && m % 60 == 0 => {
            let h = m / 60;
            (
                format!("{h} 小时"),
                format!("{h} hour{}", if h == 1 { "" } else { "s" }),
            )
        }
        m => (
            format!("{m} 分钟"),
            format!("{m} minute{}", if m == 1 { "" } else { "s" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            number: "PT20261127-000001".into(),
            matter_zh: "企业设立登记".into(),
            matter_en: "Business establishment registration".into(),
        }
    }

    /// The appointment mails tell the cutoff the hall is configured with.
    #[test]
    fn appointment_mails_tell_the_configured_cutoff() {
        let mail = |cutoff_minutes| {
            Message::Appointment {
                stage: AppointmentStage::Booked,
                counter: "A01".into(),
                slot: "2026-12-01 09:00–09:30".into(),
                calendar_path: "/api/v1/appointments/x/calendar".into(),
                cutoff_minutes,
            }
            .render(&about())
            .1
        };
        let two_hours = mail(120);
        assert!(
            two_hours.contains("开始前 2 小时内不能取消或改期"),
            "{two_hours}"
        );
        assert!(
            two_hours.contains("within 2 hours of the slot"),
            "{two_hours}"
        );
        let ninety = mail(90);
        assert!(ninety.contains("开始前 90 分钟内"), "{ninety}");
        assert!(ninety.contains("within 90 minutes of the slot"), "{ninety}");
        assert!(mail(60).contains("within 1 hour of the slot"));
    }

    #[test]
    fn chinese_comes_first_then_english() {
        let (subject, body) = Message::Accepted.render(&about());
        assert_eq!(subject, "【马上办】PT20261127-000001 已受理 / accepted");
        let zh = body.find("已受理").unwrap();
        let en = body.find("has been accepted").unwrap();
        assert!(zh < en);
    }

    #[test]
    fn a_supplement_notice_lists_every_item() {
        let message = Message::SupplementRequired {
            items: vec!["租赁合同".into(), "身份证复印件".into()],
        };
        let (_, body) = message.render(&about());
        assert!(body.contains("1. 租赁合同"));
        assert!(body.contains("2. 身份证复印件"));
        assert_eq!(message.kind(), "supplement_required");
    }

    #[test]
    fn decisions_name_the_outcome_and_a_denial_its_reason() {
        let denied = Message::Decided {
            approved: false,
            reason: Some("材料不实".into()),
        };
        assert_eq!(denied.kind(), "denied");
        assert!(denied.render(&about()).1.contains("材料不实"));
        let approved = Message::Decided {
            approved: true,
            reason: None,
        };
        assert_eq!(approved.kind(), "approved");
    }

    #[test]
    fn material_notices_name_the_material_in_both_languages() {
        let due = Message::MaterialDue {
            code: "premises_proof".into(),
            name: "住所使用证明".into(),
            due_at: "2026-12-04 17:00".into(),
        };
        assert_eq!(due.kind(), "material_due");
        let (subject, body) = due.render(&about());
        assert!(subject.contains("容缺材料即将到期 / deferred material due soon"));
        let zh = body.find("须于 2026-12-04 17:00 前补交").unwrap();
        let en = body.find("is due by 2026-12-04 17:00").unwrap();
        assert!(zh < en);
        let supplied = Message::MaterialSupplied {
            code: "premises_proof".into(),
            name: "lease.pdf".into(),
            received_at_window: true,
        };
        assert_eq!(supplied.kind(), "material_supplied");
        let (_, body) = supplied.render(&about());
        assert!(body.contains("已在窗口收取") && body.contains("received at the window"));
    }

    #[test]
    fn the_horizon_notice_says_what_to_load() {
        let message = Message::CalendarHorizon {
            calendar: "cn-shanghai".into(),
            last_day: Some("2026-12-31".into()),
            days_left: Some(32),
            next_year: 2027,
        };
        assert_eq!(message.kind(), "calendar_horizon");
        let (subject, body) = message.render(&About::calendar("cn-shanghai"));
        assert_eq!(
            subject,
            "【马上办】cn-shanghai 节假日安排即将用尽，请载入 2027 年 / holidays run out: load 2027"
        );
        let zh = body.find("只配置到 2026-12-31（还剩 32 天）").unwrap();
        let en = body.find("up to 2026-12-31 (32 days left)").unwrap();
        assert!(zh < en, "{body}");
        assert!(body.contains("PUT /api/v1/calendars/cn-shanghai/years/2027"));
    }

    #[test]
    fn clock_notices_name_the_clock_and_the_unit() {
        let message = Message::ClockBreached {
            clock: "statutory".into(),
            unit: "market".into(),
            due_at: "2026-12-01 17:00".into(),
        };
        let (subject, body) = message.render(&about());
        assert!(subject.contains("法定时限已超期"));
        assert!(body.contains("market") && body.contains("2026-12-01 17:00"));
    }
}
