"""Tests of nlp.timeframes: real corpus time frames with exact points, horizon and anchor kind."""

# ruff: noqa: E501  (real time frames are pasted verbatim, long lines included)
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.timeframes import parse_time_frame, parse_time_frame_uncached
from nlp.types import DAYS_PER_UNIT

# (time frame, points as (value, unit) in order, horizon in days, anchor kind). Real ClinicalTrials.gov
# time frames (the dev gold's outcomes and the seeds), labelled by the spec's rules.
CASES: list[tuple[str, list[tuple[float, str]], float | None, str | None]] = [
    ("From admission to the end of follow up, up to 2 years.", [(2, "year")], 730.5, "other"),
    ("Approximately 24 months", [(24, "month")], 730.5, None),
    ("Measured throughout the study", [], None, None),
    ("Up to 5 years", [(5, "year")], 1826.25, None),
    ("From enrollment to visit 5 at 24 months.", [(24, "month")], 730.5, "baseline"),
    ("Day 56", [(56, "day")], 56, None),
    (
        "Participant visits from July 2014 - September 2014; samples and data will be analyzed and presented for up to 2 years following participant visits.",
        [(2, "year")],
        730.5,
        "other",
    ),
    (
        "before and 4, 12 months after the day of first injection of ILIT",
        [(0, "day"), (4, "month"), (12, "month")],
        365.25,
        "treatment",
    ),
    ("104 weeks", [(104, "week")], 728, None),
    (
        "Week 1, 2, 3, 4, 7, 9, 12",
        [(1, "week"), (2, "week"), (3, "week"), (4, "week"), (7, "week"), (9, "week"), (12, "week")],
        84,
        None,
    ),
    ("From the time of randomization until 5 years", [(5, "year")], 1826.25, "randomization"),
    ("Up to ~28 months", [(28, "month")], 852.25, None),
    (
        "12 24 months after surgery until withdrawal or death",
        [(12, "month"), (24, "month")],
        730.5,
        "surgery",
    ),
    ("At Week 8 (Visit 3)", [(8, "week")], 56, None),
    ("0, 3 and 6 Months", [(0, "day"), (3, "month"), (6, "month")], 182.625, None),
    ("An average of 2 years after study completion", [(2, "year")], 730.5, "other"),
    (
        "week 1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 27",
        [
            (1, "week"),
            (2, "week"),
            (3, "week"),
            (4, "week"),
            (5, "week"),
            (6, "week"),
            (7, "week"),
            (8, "week"),
            (9, "week"),
            (14, "week"),
            (27, "week"),
        ],
        189,
        None,
    ),
    ("Study completion", [], None, None),
    ("Between selection and follow-up visit", [(0, "day")], None, "baseline"),
    (
        "Day 1 through up to 30 days after last dose of study intervention",
        [(1, "day"), (30, "day")],
        30,
        "treatment_end",
    ),
    (
        "at 1, 3, 6, 9 and 12 months after the graft",
        [(1, "month"), (3, "month"), (6, "month"), (9, "month"), (12, "month")],
        365.25,
        "surgery",
    ),
    (
        "Change from baseline IgG4 levels after 6 months of treatment",
        [(0, "day"), (6, "month")],
        182.625,
        "treatment",
    ),
    ("baseline, month 1, 2, 3", [(0, "day"), (1, "month"), (2, "month"), (3, "month")], 91.3125, "baseline"),
    ("2 years", [(2, "year")], 730.5, None),
    ("Week 10", [(10, "week")], 70, None),
    (
        "Week 1, 2, 3, 4, 5, 6, 7, 13, 25",
        [
            (1, "week"),
            (2, "week"),
            (3, "week"),
            (4, "week"),
            (5, "week"),
            (6, "week"),
            (7, "week"),
            (13, "week"),
            (25, "week"),
        ],
        175,
        None,
    ),
    (
        "From baseline to 30 days after the last administration, assessed up to 7 months",
        [(0, "day"), (30, "day"), (7, "month")],
        213.0625,
        "baseline",
    ),
    (
        "Change from baseline RQLQ scores at week0(before treatment)，4 and 12.",
        [(0, "day"), (4, "week"), (12, "week")],
        84,
        "baseline",
    ),
    (
        "From pre-dose to study completion, approximately 24 months",
        [(0, "day"), (24, "month")],
        730.5,
        "treatment",
    ),
    (
        "After 11 months on the maintenance dose of OIT (±3 weeks) and/or a 4-week break (±7 days).",
        [(11, "month"), (3, "week"), (4, "week"), (7, "day")],
        334.8125,
        "treatment",
    ),
    ("Up to 24 week after CAR-T cell infusion", [(24, "week")], 168, "treatment"),
    (
        "Every 8 weeks from date of first dose of IMP for the first 48 weeks and then every 12 weeks thereafter until treatment discontinuation and 90 days after last dose during safety follow-up [approx. up to 33 months]",
        [(48, "week"), (90, "day"), (33, "month")],
        1004.4375,
        "treatment",
    ),
    (
        "From randomization until death due to any cause (median follow-up of 4.5 years)",
        [(4.5, "year")],
        1643.625,
        "randomization",
    ),
    ("Up to 2 years post-transplant", [(2, "year")], 730.5, "surgery"),
    (
        "From randomization to death from any cause (up to approximately 59 months)",
        [(59, "month")],
        1795.8125,
        "randomization",
    ),
    ("Up to 45 days", [(45, "day")], 45, None),
    (
        "Months 1, 2, 3, 6, and 12",
        [(1, "month"), (2, "month"), (3, "month"), (6, "month"), (12, "month")],
        365.25,
        None,
    ),
    ("Up to approximately 5 years", [(5, "year")], 1826.25, None),
    (
        "baseline (first visit), 12 months (second visit), 24 months (third visit), 36 months (fourth visit)",
        [(0, "day"), (12, "month"), (24, "month"), (36, "month")],
        1095.75,
        "baseline",
    ),
    ("Month 6", [(6, "month")], 182.625, None),
    ("Up to ~24 weeks", [(24, "week")], 168, None),
    (
        "baseline, 6 weeks, 3 months, 6 months, 12 months",
        [(0, "day"), (6, "week"), (3, "month"), (6, "month"), (12, "month")],
        365.25,
        "baseline",
    ),
    ("Up to 48 hours", [(48, "hour")], 2, None),
    ("Evaluated at day 100 post-transplant.", [(100, "day")], 100, "surgery"),
    ("On average, indefinite, or until death of participant", [], None, None),
    (
        "From first dose of study drug until 30 days after last dose; median duration of treatment was 3.45 months in Tislelizumab + Ociperlimab arm and 2.79 months in the Tislelizumab + Placebo arm.",
        [(30, "day"), (3.45, "month"), (2.79, "month")],
        30,
        "treatment_end",
    ),
    (
        "group 1: on average within one week after 4th injection of SCIT, group 2: more than three years (3-4 years) after SCIT completion, group 3: no specific time point because there was no intervention",
        [(1, "week"), (3, "year"), (4, "year")],
        1461,
        "treatment_end",
    ),
    (
        "From the start of protocol treatment to the date the last patient has completed treatment. Analysis occurs after all patients have completed treatment.",
        [],
        None,
        "treatment",
    ),
    (
        "Cycle 1, Day 1: pre-infusion, end-of-infusion, and 1 and 3 hours after the end-of S-531011 infusion, and 24, 48, 72 hours after the start of S-531011 infusion (each cycle is 21 days)",
        [(0, "day"), (1, "hour"), (3, "hour"), (24, "hour"), (48, "hour"), (72, "hour"), (21, "day")],
        3,
        "treatment",
    ),
    ("1 year", [(1, "year")], 365.25, None),
    ("One and one-half years", [(1.5, "year")], 547.875, None),
    ("Up to approximately 36 months", [(36, "month")], 1095.75, None),
    ("At each immunization and at study completion", [], None, "treatment"),
    ("after 12-week treatment", [(12, "week")], 84, "treatment"),
    # One duration, but the 5 days change the horizon by under 1 %: no extra point.
    ("147 months and 5 days", [(147, "month"), (5, "day")], 4474.3125, None),
    (
        "From the first dose up to PD or death, whichever came first, assessed up to 24 months",
        [(24, "month")],
        730.5,
        "treatment",
    ),
    ("At baseline", [(0, "day")], 0, "baseline"),
    (
        "After every cycle of therapy (cycle = 3-4 weeks), then every 3 months for 2 years, then every 6 months for 3 years, then yearly up to 10 years or until disease progression.",
        [(3, "week"), (4, "week"), (2, "year"), (3, "year"), (10, "year")],
        3652.5,
        "treatment",
    ),
    (
        "Baseline, up to 14 days, 3 months, 6 months, 12 months",
        [(0, "day"), (14, "day"), (3, "month"), (6, "month"), (12, "month")],
        365.25,
        "baseline",
    ),
    ("From pre-dose to 90 days post end of treatment", [(0, "day"), (90, "day")], 90, "treatment_end"),
    (
        "Prerandomization phase consisted of a 6-10 day screening period and a <27 day open-label run-in period; and a 12-week double-blind phase.",
        [(0, "day"), (6, "day"), (10, "day"), (27, "day"), (12, "week")],
        84,
        "randomization",
    ),
    ("through study completion, upto 2 years post study", [(2, "year")], 730.5, "other"),
    (
        "From the date of surgery to the date of discharge, assessed up to 5 years",
        [(5, "year")],
        1826.25,
        "surgery",
    ),
    ("every cycle during treatment", [], None, "treatment"),
    ("2 and 5 years after first response", [(2, "year"), (5, "year")], 1826.25, "other"),
    (
        "Time from first day of treatment to time of death due to any cause, assessed up to 9 years",
        [(1, "day"), (9, "year")],
        3287.25,
        "treatment",
    ),
    (
        "1, 2, 3, 4, 5 and 6 months",
        [(1, "month"), (2, "month"), (3, "month"), (4, "month"), (5, "month"), (6, "month")],
        182.625,
        None,
    ),
    (
        "Measurements will be taken before intervention and four weeks after the third session (last session) of treatment",
        [(0, "day"), (4, "week")],
        28,
        "treatment_end",
    ),
    ("Within 28 days from the CAR-TA T cell infusion", [(28, "day")], 28, "treatment"),
    (
        "Participants are assessed for medical every six months for 7 to 12 years depending on when he was randomized . Upon diagnosis of prostate cancer, updates are annual.",
        [(7, "year"), (12, "year")],
        4383,
        "randomization",
    ),
    ("two years", [(2, "year")], 730.5, None),
    ("1 year on intervention", [(1, "year")], 365.25, "treatment"),
    ("Baseline to 12 weeks", [(0, "day"), (12, "week")], 84, "baseline"),
    ("through study completion, an average of 2 years", [(2, "year")], 730.5, None),
    ("baseline to survival", [(0, "day")], None, "baseline"),
    ("6-9 months", [(6, "month"), (9, "month")], 273.9375, None),
    ("After each cycle of therapy", [], None, "treatment"),
    ("Pre treatment, 1 time", [(0, "day")], 0, "treatment"),
    ("baseline and 8 weeks", [(0, "day"), (8, "week")], 56, "baseline"),
    (
        "From the date of randomization to the date of death due to any cause, up to approximately 54 months",
        [(54, "month")],
        1643.625,
        "randomization",
    ),
    ("From start of treatment until progression (median 259 days)", [(259, "day")], 259, "treatment"),
    ("7 days", [(7, "day")], 7, None),
    ("6 hours post treatment, and 24 hours post treatment", [(6, "hour"), (24, "hour")], 1, "treatment_end"),
    ("From the start of treatment to 13 weeks", [(13, "week")], 91, "treatment"),
    ("Up to 30 days after last treatment", [(30, "day")], 30, "treatment_end"),
    ("Baseline to Year 4", [(0, "day"), (4, "year")], 1461, "baseline"),
    (
        "From randomization to date of death or last follow-up. Analysis occurs after all patients have been potentially followed for 2 years",
        [(2, "year")],
        730.5,
        "randomization",
    ),
    ("From randomization up to approximately 24 months", [(24, "month")], 730.5, "randomization"),
    (
        "at 2, 16, 36, and 52 weeks of treatment",
        [(2, "week"), (16, "week"), (36, "week"), (52, "week")],
        364,
        "treatment",
    ),
    ("Each 8 weeks", [], None, None),
    ("Night 4 and Night 2", [(4, "day"), (2, "day")], 4, None),
    ("90 min", [(90, "minute")], 0.0625, None),
    ("Within one month of enrollment", [(1, "month")], 30.4375, "baseline"),
    (
        "Baseline, weeks 12, 24 and 40",
        [(0, "day"), (12, "week"), (24, "week"), (40, "week")],
        280,
        "baseline",
    ),
    ("Weeks 3-11", [(3, "week"), (11, "week")], 77, None),
    ("Baseline, Week 24", [(0, "day"), (24, "week")], 168, "baseline"),
    (
        "iRECIST/RANO every 9 weeks from study entry to objective disease progression, up to 18 months",
        [(18, "month")],
        547.875,
        "baseline",
    ),
    (
        "From randomization to date of progression or last follow-up. Analysis occurs after all patients have been potentially followed for 3 years.",
        [(3, "year")],
        1095.75,
        "randomization",
    ),
    ("Up to 30 days after discontinuation of treatment", [(30, "day")], 30, "treatment_end"),
    ("Cycle 1 (28 days)", [(28, "day")], 28, None),
    (
        "Predose, 1, 2, 2.25, 2.5, 4, 6, 8, 24, 36-48 hours postdose on Cycle 1 Day 1, Cycle 2 Day 1",
        [
            (0, "day"),
            (1, "hour"),
            (2, "hour"),
            (2.25, "hour"),
            (2.5, "hour"),
            (4, "hour"),
            (6, "hour"),
            (8, "hour"),
            (24, "hour"),
            (36, "hour"),
            (48, "hour"),
        ],
        2,
        "treatment",
    ),
    ("From baseline to up to 10 years", [(0, "day"), (10, "year")], 3652.5, "baseline"),
    (
        "From date of randomization until date of death from any cause (Approximately 15 months)]",
        [(15, "month")],
        456.5625,
        "randomization",
    ),
    ("Day 1 up to Month 9", [(1, "day"), (9, "month")], 273.9375, None),
    (
        "Baseline, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 12, 15 and 24 Hour",
        [
            (0, "day"),
            (0.25, "hour"),
            (0.5, "hour"),
            (1, "hour"),
            (1.5, "hour"),
            (2, "hour"),
            (2.5, "hour"),
            (3, "hour"),
            (4, "hour"),
            (5, "hour"),
            (6, "hour"),
            (12, "hour"),
            (15, "hour"),
            (24, "hour"),
        ],
        1,
        "baseline",
    ),
    (
        "baseline, post-treatment (after at least 3 years of allergen-specific immunotherapy)",
        [(0, "day"), (3, "year")],
        1095.75,
        "treatment",
    ),
    (
        "Time from initial response (CR or PR) to date of documented disease progression or death (due to any cause) whichever occurs first, up to 42 months",
        [(42, "month")],
        1278.375,
        "other",
    ),
    ("third day after surgery", [(3, "day")], 3, "surgery"),
    (
        "Baseline; Weeks 4, 8, and 12 after each injection (up to Week 48; injections given from Week 12 to Week 36)",
        [(0, "day"), (4, "week"), (8, "week"), (12, "week"), (48, "week"), (36, "week")],
        336,
        "baseline",
    ),
    ("4 weeks after the CAR-T cells infusion", [(4, "week")], 28, "treatment"),
    ("at first week", [(1, "week")], 7, None),
    ("Pre treatment", [(0, "day")], 0, "treatment"),
    ("from Day 1 to Day 28", [(1, "day"), (28, "day")], 28, None),
    ("Week 4 to Week 54", [(4, "week"), (54, "week")], 378, None),
    (
        "The estimated time from randomization to patient disease progression was 10 months",
        [(10, "month")],
        304.375,
        "randomization",
    ),
    ("Baseline and Day 84", [(0, "day"), (84, "day")], 84, "baseline"),
    ("Change from baseline to 18 months after injection", [(0, "day"), (18, "month")], 547.875, "treatment"),
    (
        "Time from first study drug administration to final assessment at end of safety follow-up visit (up to a maximum of approximately 2 years)",
        [(2, "year")],
        730.5,
        "treatment",
    ),
    ("12 months after intervention", [(12, "month")], 365.25, "treatment"),
    ("Yearly", [], None, None),
    ("At least 2 years", [(2, "year")], 730.5, None),
    ("Week 12 or earlier", [(12, "week")], 84, None),
    ("Baseline", [(0, "day")], 0, "baseline"),
    (
        "Before (pre) and one month after (post) the booster administration",
        [(0, "day"), (1, "month")],
        30.4375,
        "treatment",
    ),
    ("12 previous months, collected at baseline", [(12, "month"), (0, "day")], 0, "baseline"),
    (
        "Anytime after initiation of combination therapy (in the preceding 12-week double-blind studies or in the preceding open-label year 1 study) up to 116 weeks, to within 30 days after the last dose of combination therapy.",
        [(12, "week"), (1, "year"), (116, "week"), (30, "day")],
        812,
        "treatment",
    ),
    # Seeds (CSV-export cells of TH-CART-027 and IM96).
    ("28 days after the first TH-CART-027 infusion.", [(28, "day")], 28, "treatment"),
    ("Six months post CAR-T cells infusion.", [(6, "month")], 182.625, "treatment"),
    ("12 and 24 months post CAR-T cells infusion.", [(12, "month"), (24, "month")], 730.5, "treatment"),
    ("3 months post CAR-T cells infusion.", [(3, "month")], 91.3125, "treatment"),
    ("1 year post CAR-T cells infusion.", [(1, "year")], 365.25, "treatment"),
    ("1 year post CAR-T cells infusion", [(1, "year")], 365.25, "treatment"),
    ("Up to 28 days after CAR-T cell infusion", [(28, "day")], 28, "treatment"),
    ("Up to 90 days after CAR-T cell infusion", [(90, "day")], 90, "treatment"),
    (
        "At 28 days, 3 months, 6 months and 12 months after CAR-T cell infusion",
        [(28, "day"), (3, "month"), (6, "month"), (12, "month")],
        365.25,
        "treatment",
    ),
    # More corpus shapes.
    ("1，2，3，4，6 weeks", [(1, "week"), (2, "week"), (3, "week"), (4, "week"), (6, "week")], 42, None),
    ("72h", [(72, "hour")], 3, None),
    ("1day", [(1, "day")], 1, None),
    ("Weeks 3-11", [(3, "week"), (11, "week")], 77, None),
    ("35 days post-transplant", [(35, "day")], 35, "surgery"),
    ("Before and 6 months after the surgery.", [(0, "day"), (6, "month")], 182.625, "surgery"),
    ("21 - 28 days after end of therapy", [(21, "day"), (28, "day")], 28, "treatment_end"),
    ("Approximately 32 months after first randomization", [(32, "month")], 974.0, "randomization"),
    ("Baseline and annually for up to 5 years.", [(0, "day"), (5, "year")], 1826.25, "baseline"),
    ("From registration to last follow-up.", [], None, "baseline"),
    ("2022.08-2022.10", [], None, None),
    ("Hospital discharge or 120 days of life", [(120, "day")], 120, "other"),
    ("baseline to survival", [(0, "day")], None, "baseline"),
    ("12 previous months, collected at baseline", [(12, "month"), (0, "day")], 0, "baseline"),
    ("6 hours post treatment, and 24 hours post treatment", [(6, "hour"), (24, "hour")], 1, "treatment_end"),
    # A time with a visit window written without parentheses: the time is a point and the horizon.
    (
        "Within 24 ± 4 hours after administration of gadoquatrane or any approved macrocyclic GBCAs",
        [(24, "hour"), (4, "hour")],
        1,
        "treatment",
    ),
    ("Point 2. 15 ± 3 days after the start of the therapy.", [(15, "day"), (3, "day")], 15, "treatment"),
    ("6±2 weeks post 1st treatment", [(6, "week"), (2, "week")], 42, "treatment"),
    ("28±7 days postoperatively", [(28, "day"), (7, "day")], 28, "surgery"),
    ("Day 60 ±5 days", [(60, "day"), (5, "day")], 60, None),
    # "last"/"final" with a word before the noun is still the end of treatment.
    ("At 12 weeks after the final DLI", [(12, "week")], 84, "treatment_end"),
    ("Up to 3 months after the final vaccine dose", [(3, "month")], 91.3125, "treatment_end"),
    ("Upwards to 6 months after the final laser treatment", [(6, "month")], 182.625, "treatment_end"),
    ("Up to 30 days after the last TMS session", [(30, "day")], 30, "treatment_end"),
    ("Up to 90 days after last patient first treatment", [(90, "day")], 90, "treatment"),
    # The start of study treatment is the treatment, the start of the study is study entry.
    ("At 24 weeks after the start of study treatments", [(24, "week")], 168, "treatment"),
    (
        "From the start of the study until the end of follow-up, up to 3 years",
        [(3, "year")],
        1095.75,
        "baseline",
    ),
    # Compound durations: the horizon is the whole duration.
    ("Up to 3 years 5 months", [(3, "year"), (5, "month"), (41, "month")], 1247.9375, None),
    ("Up to 2 years and 10 months", [(2, "year"), (10, "month"), (34, "month")], 1034.875, None),
    ("1 week and 3 days", [(1, "week"), (3, "day"), (10, "day")], 10, None),
    (
        "From first dose to discontinuation of study drug (up to 3 years and 4 months)",
        [(3, "year"), (4, "month"), (40, "month")],
        1217.5,
        "treatment",
    ),
    ("12 months and 24 months", [(12, "month"), (24, "month")], 730.5, None),
    # "Day +100": a signed study day, as "Day -14" is.
    ("Day +100", [(100, "day")], 100, None),
    ("Day +84-90 Post-Transplant", [(84, "day"), (90, "day")], 90, "surgery"),
    ("Day -7 to Day +28", [(-7, "day"), (28, "day")], 28, None),
    # "post-baseline" names the anchor but is no time zero.
    ("two and 6 months post-baseline", [(2, "month"), (6, "month")], 182.625, "baseline"),
    (
        "Baseline, 3, 7, 10, 14 days post-baseline",
        [(0, "day"), (3, "day"), (7, "day"), (10, "day"), (14, "day")],
        14,
        "baseline",
    ),
    # Completing or finishing the treatment is its end.
    (
        "Assessment of serologic markers on Day 0 and 2 months after completing treatment",
        [(0, "day"), (2, "month")],
        60.875,
        "treatment_end",
    ),
    ("3 months after finishing radiotherapy", [(3, "month")], 91.3125, "treatment_end"),
    # "Dose-Limiting" is no dose.
    ("At the end of 28 day Dose-Limiting Toxicities (DLT) observation Period", [(28, "day")], 28, None),
    # An anchor word further on without a connector is not what the horizon counts from.
    (
        "Change from Baseline Supraclavicular skin temperature at 6 and 12 weeks for each of the two treatments (multi-ingredient and placebo)",
        [(0, "day"), (6, "week"), (12, "week")],
        84,
        "baseline",
    ),
    (
        "group 2: more than three years (3-4 years) after SCIT completion",
        [(3, "year"), (4, "year")],
        1461,
        "treatment_end",
    ),
]


@pytest.mark.parametrize(("text", "points", "horizon", "anchor"), CASES)
def test_timeframes_real_time_frames(
    text: str, points: list[tuple[float, str]], horizon: float | None, anchor: str | None
) -> None:
    timing = parse_time_frame(text)
    assert [(p.value, p.unit) for p in timing.points] == [(float(v), u) for v, u in points]
    if horizon is None:
        assert timing.horizon_days is None
    else:
        assert timing.horizon_days == pytest.approx(horizon, rel=1e-6)
    assert (timing.anchor.kind if timing.anchor else None) == anchor


@pytest.mark.parametrize(
    ("text", "cycles", "horizon"),
    [
        (
            "Cycle 1 Day 1 (pre-dose and post-dose), Cycle 2 Day 1 (pre-dose), Cycle 5 Day 1 (pre-dose and "
            "post-dose), pre-dose on Cycle 6 Day 1, Cycle 9 Day 1, Cycle 13 Day 1, Cycle 17 Day 1 and Cycle 25 "
            "Day 1 (each cycle = 21 days)",
            [(1, 1), (2, 1), (5, 1), (6, 1), (9, 1), (13, 1), (17, 1), (25, 1)],
            505,
        ),
        ("Cycle 1 Day 1, C2D1 and Day 1 of Cycle 3 (each cycle is 28 days)", [(1, 1), (2, 1), (3, 1)], 57),
        ("Days 1 and 15 of Cycle 2", [(2, 1), (2, 15)], None),
        ("Cycle 1 (28 days)", [(1, None)], 28),
        ("Cycles 1-6", [(1, None), (6, None)], None),
        # Several cycles for one day; a parenthesis between them; "1, 2, and 5".
        ("Day 1 of Cycles 2, 3, 4, 5 and 6", [(2, 1), (3, 1), (4, 1), (5, 1), (6, 1)], None),
        ("Day 1 (pre-dose) of Cycles 1, 2, and 5 (1 cycle= 28 days)", [(1, 1), (2, 1), (5, 1)], 113),
        (
            "Pre-dose on Day 1 of Cycles 1, 2, 4, and 6, 0.5 hours post-dose",
            [(1, 1), (2, 1), (4, 1), (6, 1)],
            1 / 48,
        ),
        ("Cycles 1, 2, 5, and 9", [(1, None), (2, None), (5, None), (9, None)], None),
        (
            "and third dose (Day 15) of the first cycle (each cycle is 28 days); and Day 1 (dosing) of Cycle 2 and "
            "Day 1 (dosing) of Cycle 3.",
            [(2, 1), (3, 1), (1, 15)],
            57,
        ),
        # Ways of stating the cycle length.
        ("every cycle until cycle 6 (one cycle equals 3 weeks)", [(6, None)], 126),
        ("Cycle 2 (cycle is of 28 days)", [(2, None)], 56),
        ("End of Cycle 3 (each cycle was 21 days)", [(3, None)], 63),
        ("After second cycle of treatment", [(2, None)], None),
        (
            "Predose, 1, 2, 2.25, 2.5, 4, 6, 8, 24, 36-48 hours postdose on Cycle 1 Day 1, Cycle 2 Day 1",
            [(1, 1), (2, 1)],
            2,
        ),
        (
            "Cycle 1: Pre-dose (within 4 hours prior to infusion on Day 1) and 0.5, 3, 6, 24, 72, and 168 hours "
            "after end of infusion; Subsequent cycles: Pre-dose (within 4 hours prior to infusion) and 0.5 hours "
            "after end of infusion on Day 1 and Day 15",
            [(1, 1)],
            15,
        ),
        (
            "Cycle 1, Day 1: pre-infusion, end-of-infusion, and 1 and 3 hours after the end-of S-531011 infusion, "
            "and 24, 48, 72 hours after the start of S-531011 infusion (each cycle is 21 days)",
            [(1, 1)],
            3,
        ),
    ],
)
def test_timeframes_cycles(
    text: str, cycles: list[tuple[int | None, int | None]], horizon: float | None
) -> None:
    timing = parse_time_frame(text)
    assert [(c.cycle, c.day) for c in timing.cycles] == cycles
    if horizon is None:
        assert timing.horizon_days is None
    else:
        assert timing.horizon_days == pytest.approx(horizon)


@pytest.mark.parametrize(
    ("text", "interval", "evidence"),
    [
        (
            "Every 8 weeks from date of first dose of IMP for the first 48 weeks and then every 12 weeks",
            (8, "week"),
            "Every 8 weeks",
        ),
        ("Each 8 weeks", (8, "week"), "Each 8 weeks"),
        ("Yearly", (1, "year"), "Yearly"),
        ("every other week for 6 months", (2, "week"), "every other week"),
        ("3-weekly up to 1 year", (3, "week"), "3-weekly"),
        (
            "Participants are assessed for medical every six months for 7 to 12 years depending on when he was "
            "randomized . Upon diagnosis of prostate cancer, updates are annual.",
            (6, "month"),
            "every six months",
        ),
        (
            "After every cycle of therapy (cycle = 3-4 weeks), then every 3 months for 2 years, then every 6 months "
            "for 3 years, then yearly up to 10 years or until disease progression.",
            (3, "month"),
            "every 3 months",
        ),
        ("Up to 24 weeks", None, None),
        ("Activities of daily living at 6 months", None, None),
    ],
)
def test_timeframes_interval(text: str, interval: tuple[float, str] | None, evidence: str | None) -> None:
    timing = parse_time_frame(text)
    if interval is None:
        assert timing.interval is None
        return
    assert timing.interval is not None
    assert (timing.interval.value, timing.interval.unit) == (float(interval[0]), interval[1])
    assert text[timing.interval.start : timing.interval.end] == evidence


def test_timeframes_interval_is_not_a_point() -> None:
    timing = parse_time_frame(
        "Evaluated at 6 weeks then every 9 weeks throughout the study until discontinuation, average 13 months."
    )
    assert [(p.value, p.unit) for p in timing.points] == [(6.0, "week"), (13.0, "month")]


@pytest.mark.parametrize(
    ("text", "evidence", "horizon_evidence", "anchor_evidence"),
    [
        (
            "Up to 28 days after the first TH-CART-027 infusion.",
            ["28 days"],
            "28 days",
            "after the first TH-CART-027 infusion",
        ),
        ("Six months post CAR-T cells infusion.", ["Six months"], "Six months", "post CAR-T cells infusion"),
        (
            "Baseline, Day -14, Day 28 (±3 days)",
            ["Baseline", "Day -14", "Day 28", "3 days"],
            "Day 28",
            "Baseline",
        ),
        (
            "12 previous months, collected at baseline",
            ["12 previous months", "baseline"],
            "baseline",
            "baseline",
        ),
        (
            "Day 1 through up to 30 days after last dose of study intervention",
            ["Day 1", "30 days"],
            "30 days",
            "after last dose",
        ),
        ("One and one-half years", ["One and one-half years"], "One and one-half years", None),
    ],
)
def test_timeframes_offsets(
    text: str, evidence: list[str], horizon_evidence: str, anchor_evidence: str | None
) -> None:
    timing = parse_time_frame(text)
    assert [text[p.start : p.end] for p in timing.points] == evidence
    assert timing.horizon_span is not None
    assert text[timing.horizon_span[0] : timing.horizon_span[1]] == horizon_evidence
    if anchor_evidence is None:
        assert timing.anchor is None
    else:
        assert timing.anchor is not None
        assert timing.anchor.field == "time_frame"
        assert text[timing.anchor.start : timing.anchor.end] == anchor_evidence == timing.anchor.text


def test_timeframes_two_anchors_horizon_decides() -> None:
    # The horizon (90 days) counts from the end of treatment, not from the pre-dose start.
    timing = parse_time_frame("From pre-dose to 90 days post end of treatment")
    assert timing.anchor is not None and timing.anchor.kind == "treatment_end"
    # A horizon with no anchor after it: the first anchor named.
    timing = parse_time_frame(
        "From baseline to 30 days after the last administration, assessed up to 7 months"
    )
    assert timing.anchor is not None and timing.anchor.kind == "baseline"


def test_timeframes_cached_equals_uncached() -> None:
    text = "baseline, 6 weeks, 3 months, 6 months, 12 months"
    assert parse_time_frame(text) == parse_time_frame_uncached(text)
    assert parse_time_frame(text) is parse_time_frame(text)


_TIME_WORDS = st.sampled_from(
    [
        "12",
        "0",
        "6.5",
        "six",
        "one and one-half",
        "Week",
        "Day",
        "months",
        "years",
        "hours",
        "Cycle",
        "C1D1",
        "every",
        "up to",
        "baseline",
        "pre-dose",
        "±",
        "(",
        ")",
        ",",
        "-",
        "and",
        "of age",
        "after",
        "last dose",
        "each cycle is",
        "21 days",
        "previous",
        "Day -14",
        "2019",
        "post-transplant",
        " ",
        "；",
        "İ",
        "µ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_TIME_WORDS, max_size=14).map(" ".join)))
def test_timeframes_properties(text: str) -> None:
    timing = parse_time_frame_uncached(text)  # never raises
    for p in timing.points:
        assert 0 <= p.start < p.end <= len(text)
        assert p.unit in DAYS_PER_UNIT
    for c in timing.cycles:
        assert 0 <= c.start < c.end <= len(text)
    if timing.interval is not None:
        assert 0 <= timing.interval.start < timing.interval.end <= len(text)
    if timing.anchor is not None:
        assert 0 <= timing.anchor.start < timing.anchor.end <= len(text)
        assert text[timing.anchor.start : timing.anchor.end] == timing.anchor.text
    if timing.horizon_days is not None:
        # The horizon is the day count of one of the points.
        assert any(abs(p.days - timing.horizon_days) < 1e-9 for p in timing.points)
        assert timing.horizon_span is not None
        assert 0 <= timing.horizon_span[0] < timing.horizon_span[1] <= len(text)
