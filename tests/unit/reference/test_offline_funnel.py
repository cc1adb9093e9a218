"""tests.reference.offline_funnel: offline funnel KPIs of the public data sets, checked by hand and by a second route.

Literals marked "awk" / "grep" were read off the CSV files with the command quoted next to them (run in
``../shared/datasets/<data set>/``); the Olist files have CRLF line ends, hence the ``\\r`` in some patterns. Tests
on the real data sets are skipped when ``../shared/datasets`` is missing; the others write tiny CSV files.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tests.reference.offline_funnel import (
    CRM_DIR,
    OLIST_DIR,
    DatasetFormatError,
    GroupKey,
    OlistMonth,
    SalesMonth,
    datasets_dir,
    olist_funnel_by_month,
    percentile_linear,
    sales_opportunities_by_month,
)

DAY = 86400


@pytest.fixture(scope="module")
def folder() -> Path:
    try:
        found = datasets_dir()
    except FileNotFoundError as error:
        pytest.skip(f"public data sets not available: {error}")
    for name in (CRM_DIR, OLIST_DIR):
        if not (found / name).is_dir():
            pytest.skip(f"public data set not found: {found / name}")
    return found


@pytest.fixture(scope="module")
def sales(folder: Path) -> dict[GroupKey, SalesMonth]:
    return sales_opportunities_by_month(folder)


@pytest.fixture(scope="module")
def olist(folder: Path) -> dict[GroupKey, OlistMonth]:
    return olist_funnel_by_month(folder)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def of_kind(result: dict[GroupKey, SalesMonth], kind: str) -> dict[GroupKey, SalesMonth]:
    return {key: value for key, value in result.items() if key[0] == kind}


# -- percentiles -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([7], Fraction(1, 2), 7.0),  # n == 1: the value itself
        ([7], Fraction(9, 10), 7.0),
        ([4, 1, 3, 2], Fraction(1, 2), 2.5),  # h = 1.5 -> 2 + 0.5 * (3 - 2)
        ([4, 1, 3, 2], Fraction(9, 10), 3.7),  # h = 2.7 -> 3 + 0.7 * (4 - 3)
        ([5, 1], Fraction(9, 10), 4.6),  # h = 0.9 -> 1 + 0.9 * 4
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100], Fraction(9, 10), 10.0),  # h = 9 exactly -> x[9]
        ([0, 10], Fraction(1), 10.0),  # p = 1: the maximum
        ([0, 10], Fraction(0), 0.0),
        ([73 * DAY, 101 * DAY, 115 * DAY], Fraction(9, 10), 112.2 * DAY),  # h = 1.8 -> 101 + 0.8 * 14 days
    ],
)
def test_percentile_linear_by_hand(samples: list[int], p: Fraction, expected: float) -> None:
    assert percentile_linear(samples, p) == pytest.approx(expected, rel=1e-15)


def test_percentile_linear_rejects_no_samples_and_bad_fractions() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile_linear([], Fraction(1, 2))
    with pytest.raises(ValueError, match="outside"):
        percentile_linear([1], Fraction(3, 2))


# -- finding the data sets -------------------------------------------------------------------------------------


def test_datasets_dir_is_next_to_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "main"
    repo.mkdir()
    with pytest.raises(FileNotFoundError, match=r"shared/datasets"):
        datasets_dir(repo)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert datasets_dir(repo) == (tmp_path / "shared" / "datasets").resolve()


# -- tiny synthetic data sets: the None rules, time zones and formats ------------------------------------------

PIPELINE_HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"
TEAMS = "sales_agent,manager,regional_office\nAnn,Boss,East\nBob,Boss,West\n"


def write_crm(root: Path, *rows: str, teams: str = TEAMS) -> Path:
    crm = root / CRM_DIR
    crm.mkdir(parents=True)
    (crm / "sales_teams.csv").write_text(teams, encoding="utf-8")
    (crm / "sales_pipeline.csv").write_text("\n".join((PIPELINE_HEADER, *rows)) + "\n", encoding="utf-8")
    return root


def write_olist(root: Path, mqls: list[str], deals: list[str]) -> Path:
    olist = root / OLIST_DIR
    olist.mkdir(parents=True)
    (olist / "olist_marketing_qualified_leads_dataset.csv").write_text(
        "\r\n".join(("mql_id,first_contact_date,origin", *mqls)) + "\r\n", encoding="utf-8"
    )
    (olist / "olist_closed_deals_dataset.csv").write_text(
        "\r\n".join(("mql_id,seller_id,sdr_id,sr_id,won_date,business_segment", *deals)) + "\r\n", encoding="utf-8"
    )
    return root


def test_sales_none_rules(tmp_path: Path) -> None:
    root = write_crm(
        tmp_path,
        "P1,Ann,X,Acme,Prospecting,,,",  # ignored
        "E1,Ann,X,Acme,Engaging,1/10/2017,,",  # Jan: created only
        "L1,Ann,X,Acme,Lost,1/11/2017,2/3/2017,0",  # Jan created, Feb lost
        "W1,Bob,X,Acme,Won,1/1/2017,3/2/2017,100.50",  # Jan created, Mar won after 60 days
        "W2,Bob,X,Acme,Won,3/1/2017,3/1/2017,10",  # Mar created and won the same day: cycle 0
    )
    result = sales_opportunities_by_month(root)
    assert set(result) == {
        ("overall", (), "2017-01"),
        ("overall", (), "2017-02"),
        ("overall", (), "2017-03"),
        ("team", ("East",), "2017-01"),
        ("team", ("East",), "2017-02"),
        ("team", ("West",), "2017-01"),
        ("team", ("West",), "2017-03"),
        ("rep", ("East", "Ann"), "2017-01"),
        ("rep", ("East", "Ann"), "2017-02"),
        ("rep", ("West", "Bob"), "2017-01"),
        ("rep", ("West", "Bob"), "2017-03"),
    }
    january = result["team", ("East",), "2017-01"]  # two created, nothing closed
    assert january["opportunities_created"] == 2
    assert january["opportunity_to_customer"] == 0.0
    assert january["win_rate"] is None
    assert january["average_deal_size"] is None
    assert january["cycle_mean_seconds"] is None
    assert january["cycle_p50_seconds"] is None
    assert january["cycle_p90_seconds"] is None
    assert january["pipeline_velocity_per_day"] is None
    february = result["team", ("East",), "2017-02"]  # one lost, nothing created or won
    assert (february["opportunities_created"], february["deals_won"], february["deals_lost"]) == (0, 0, 1)
    assert february["win_rate"] == 0.0
    assert february["opportunity_to_customer"] is None
    assert february["average_deal_size"] is None
    assert february["pipeline_velocity_per_day"] is None
    march = result["rep", ("West", "Bob"), "2017-03"]  # two won (cycles 60 days and 0), one created
    assert march["revenue"] == Decimal("110.50")
    assert march["average_deal_size"] == Decimal("55.25")
    assert march["win_rate"] == 1.0
    assert march["opportunity_to_customer"] == 2.0  # a period ratio: it may exceed 1
    assert march["cycle_mean_seconds"] == 30 * DAY
    assert march["cycle_p50_seconds"] == 30 * DAY
    assert march["cycle_p90_seconds"] == pytest.approx(54 * DAY)  # 0 + 0.9 * 60 days
    assert march["pipeline_velocity_per_day"] == pytest.approx(1 * 55.25 * 1.0 / 30)
    assert result["overall", (), "2017-03"]["deals_won"] == 2


def test_sales_velocity_is_zero_without_created_and_none_with_zero_cycle(tmp_path: Path) -> None:
    root = write_crm(
        tmp_path,
        "W1,Ann,X,Acme,Won,1/5/2017,2/4/2017,300",  # Feb: won, nothing created that month
        "W2,Bob,X,Acme,Won,4/1/2017,4/1/2017,300",  # Apr: created and won the same day
    )
    result = sales_opportunities_by_month(root)
    february = result["overall", (), "2017-02"]
    assert february["opportunity_to_customer"] is None
    assert february["pipeline_velocity_per_day"] == 0.0
    april = result["overall", (), "2017-04"]
    assert april["cycle_mean_seconds"] == 0.0
    assert april["pipeline_velocity_per_day"] is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X1,Ann,X,Acme,Closed,1/1/2017,2/1/2017,5", "unknown deal_stage"),
        ("X1,Ann,X,Acme,Won,2017-01-01,2/1/2017,5", "not M/D/YYYY"),
        ("X1,Ann,X,Acme,Won,13/1/2017,2/1/2017,5", "month must be in 1..12"),
        ("X1,Ann,X,Acme,Won,1/1/2017,2/1/2017,$5", "not a non-negative decimal"),
        ("X1,Ann,X,Acme,Won,1/1/2017,2/1/2017,", "not a non-negative decimal"),
        ("X1,Ann,X,Acme,Won,3/1/2017,2/1/2017,5", "close_date before engage_date"),
        ("X1,Ann,X,Acme,Prospecting,1/1/2017,,", "Prospecting row with dates"),
        ("X1,Ann,X,Acme,Engaging,1/1/2017,2/1/2017,", "Engaging row with a close_date"),
        ("X1,Zed,X,Acme,Lost,1/1/2017,2/1/2017,0", "not in sales_teams.csv"),
        ("X1,Ann,X,Acme,Lost,1/1/2017,2/1/2017", "7 fields"),
    ],
)
def test_sales_rows_outside_the_known_formats_fail_loudly(tmp_path: Path, row: str, message: str) -> None:
    root = write_crm(tmp_path, "OK,Ann,X,Acme,Lost,1/1/2017,2/1/2017,0", row)
    with pytest.raises(DatasetFormatError, match=rf"sales_pipeline\.csv:3: .*{message}"):
        sales_opportunities_by_month(root)


def test_olist_local_months_channels_and_reps(tmp_path: Path) -> None:
    root = write_olist(
        tmp_path,
        [
            "m1,10/15/2017,paid_search",  # local midnight that does not exist (summer time starts): October
            "m2,10/31/2017,",  # empty origin -> "unknown"
            "m3,2/17/2018,unknown",
            "m4,11/1/2017,social",
        ],
        [
            "m1,s,d,rep1,31-10-2017 23:30,pet",  # 01:30 UTC on 1 November, but October in Sao Paulo
            "m2,s,d,rep2,28-02-2018 22:17,pet",  # 01:17 UTC on 1 March, February locally
            "m3,s,d,rep1,17-02-2018 23:30,pet",  # an hour that happens twice (summer time ends)
        ],
    )
    result = olist_funnel_by_month(root)
    assert result["overall", (), "2017-10"] == {"leads": 2, "mqls": 2, "deals_won": 1, "lead_to_customer": 0.5}
    assert result["overall", (), "2017-11"] == {"leads": 1, "mqls": 1, "deals_won": 0, "lead_to_customer": 0.0}
    assert result["overall", (), "2018-02"] == {"leads": 1, "mqls": 1, "deals_won": 2, "lead_to_customer": 2.0}
    assert result["channel", ("unknown",), "2018-02"]["deals_won"] == 2  # m2 (empty origin) and m3 ("unknown")
    assert result["channel", ("unknown",), "2017-10"] == {
        "leads": 1,
        "mqls": 1,
        "deals_won": 0,
        "lead_to_customer": 0.0,
    }
    assert result["channel", ("paid_search",), "2017-10"]["deals_won"] == 1
    assert result["rep", ("rep1",), "2018-02"] == {
        "leads": None,
        "mqls": None,
        "deals_won": 1,
        "lead_to_customer": None,
    }
    assert ("overall", (), "2017-11") in result
    assert not any(kind == "channel" and key == ("",) for kind, key, _ in result)


def test_olist_a_month_with_wins_but_no_leads_has_no_ratio(tmp_path: Path) -> None:
    root = write_olist(tmp_path, ["m1,1/2/2018,email"], ["m1,s,d,rep1,03-03-2018 10:00,pet"])
    result = olist_funnel_by_month(root)
    assert result["overall", (), "2018-03"] == {"leads": 0, "mqls": 0, "deals_won": 1, "lead_to_customer": None}
    assert result["channel", ("email",), "2018-01"]["lead_to_customer"] == 0.0


@pytest.mark.parametrize(
    ("mqls", "deals", "message"),
    [
        (["m1,2018-01-02,email"], [], r"qualified_leads_dataset\.csv:2: .*not M/D/YYYY"),
        (["m1,1/2/2018 10:00,email"], [], r"qualified_leads_dataset\.csv:2: .*not M/D/YYYY"),
        (["m1,1/2/2018,email", "m1,1/3/2018,email"], [], r"qualified_leads_dataset\.csv:3: .*repeated"),
        (["m1,1/2/2018,email"], ["m1,s,d,r,2018-02-26 19:58:54,pet"], r"closed_deals_dataset\.csv:2: .*DD-MM-YYYY"),
        (["m1,1/2/2018,email"], ["m1,s,d,r,26-02-2018 19:58:54,pet"], r"closed_deals_dataset\.csv:2: .*DD-MM-YYYY"),
        (["m1,1/2/2018,email"], ["m1,s,d,r,26/02/2018 19:58,pet"], r"closed_deals_dataset\.csv:2: .*DD-MM-YYYY"),
        (["m1,1/2/2018,email"], ["m1,s,d,r,31-02-2018 19:58,pet"], r"closed_deals_dataset\.csv:2: .*day is out"),
        (["m1,1/2/2018,email"], ["m9,s,d,r,26-02-2018 19:58,pet"], r"closed_deals_dataset\.csv:2: .*not in the MQL"),
        (["m1,1/2/2018,email"], ["m1,s,d,,26-02-2018 19:58,pet"], r"closed_deals_dataset\.csv:2: empty sr_id"),
    ],
)
def test_olist_rows_outside_the_known_formats_fail_loudly(
    tmp_path: Path, mqls: list[str], deals: list[str], message: str
) -> None:
    root = write_olist(tmp_path, mqls, deals)
    with pytest.raises(DatasetFormatError, match=message):
        olist_funnel_by_month(root)


# -- the real crm-sales-opportunities data set -----------------------------------------------------------------


def test_sales_totals_equal_a_second_route(folder: Path, sales: dict[GroupKey, SalesMonth]) -> None:
    rows = read(folder / CRM_DIR / "sales_pipeline.csv")
    stages = Counter(row["deal_stage"] for row in rows)
    # awk -F, 'NR>1{c[$5]++} END{for(k in c) print k, c[k]}' sales_pipeline.csv
    assert stages == {"Won": 4238, "Lost": 2473, "Engaging": 1589, "Prospecting": 500}
    overall = of_kind(sales, "overall").values()
    assert sum(month["deals_won"] for month in overall) == stages["Won"]
    assert sum(month["deals_lost"] for month in overall) == stages["Lost"]
    assert sum(month["cycle_samples"] for month in overall) == stages["Won"]
    assert sum(month["opportunities_created"] for month in overall) == len(rows) - stages["Prospecting"] == 8300
    # awk -F, 'NR>1 && $5=="Won"{s+=$8} END{print s}' sales_pipeline.csv
    assert sum((month["revenue"] for month in overall), Decimal(0)) == Decimal(10005534)
    assert sum((Decimal(row["close_value"]) for row in rows if row["deal_stage"] == "Won"), Decimal(0)) == Decimal(
        10005534
    )


def counters(value: SalesMonth) -> Counter[str]:
    """The additive part of a month: summing it over teams (or reps) must give the overall (or team) month."""
    return Counter(
        {
            "opportunities_created": value["opportunities_created"],
            "deals_won": value["deals_won"],
            "deals_lost": value["deals_lost"],
            "revenue_cents": int(value["revenue"] * 100),
            "cycle_samples": value["cycle_samples"],
            "cycle_seconds_total": round((value["cycle_mean_seconds"] or 0) * value["cycle_samples"]),
        }
    )


def test_sales_teams_and_reps_add_up(sales: dict[GroupKey, SalesMonth]) -> None:
    by_team: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_overall: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for (kind, key, month), value in sales.items():
        if kind == "rep":
            by_team[key[0], month].update(counters(value))
        elif kind == "team":
            by_overall[month].update(counters(value))
    assert by_team
    for (team, month), total in by_team.items():
        assert +counters(sales["team", (team,), month]) == +total, (team, month)
    for month, total in by_overall.items():
        assert +counters(sales["overall", (), month]) == +total, month
    assert {key for kind, key, _ in sales if kind == "team"} == {("Central",), ("East",), ("West",)}
    # sales_teams.csv lists 35 agents; awk -F, 'NR>1{print $2}' sales_pipeline.csv | sort -u | wc -l -> 30
    assert len({key for kind, key, _ in sales if kind == "rep"}) == 30
    assert not any(key == ("Central", "Carl Lin") for kind, key, _ in sales)  # in sales_teams.csv, no deal


@pytest.mark.parametrize(
    ("month", "created", "won", "lost", "revenue"),
    [
        # awk -F, -v m=3 'NR>1 && $5=="Won" && $7 ~ "^"m"/[0-9]+/2017$"{w++; s+=$8}
        #   NR>1 && $5=="Lost" && $7 ~ "^"m"/[0-9]+/2017$"{l++}
        #   NR>1 && $5!="Prospecting" && $6 ~ "^"m"/[0-9]+/2017$"{c++} END{print w, l, s, c}' sales_pipeline.csv
        ("2017-03", 792, 531, 116, 1134672),
        ("2017-06", 792, 531, 110, 1338466),
        ("2017-09", 779, 503, 132, 1235264),
        ("2017-12", 121, 511, 140, 1131573),
    ],
)
def test_sales_overall_months_read_off_with_awk(
    sales: dict[GroupKey, SalesMonth], month: str, created: int, won: int, lost: int, revenue: int
) -> None:
    value = sales["overall", (), month]
    assert value["opportunities_created"] == created
    assert value["deals_won"] == won
    assert value["deals_lost"] == lost
    assert value["revenue"] == Decimal(revenue)
    assert value["win_rate"] == won / (won + lost)
    assert value["opportunity_to_customer"] == won / created


def test_sales_months_before_the_first_close(sales: dict[GroupKey, SalesMonth]) -> None:
    # the first close_date is 3/1/2017 (awk over $7); the first engage_date 10/20/2016
    months = sorted(month for kind, _, month in sales if kind == "overall")
    assert months[0] == "2016-10"
    assert months[-1] == "2017-12"
    for month in ("2016-10", "2016-11", "2016-12", "2017-01", "2017-02"):
        value = sales["overall", (), month]
        assert value["deals_won"] == value["deals_lost"] == 0
        assert value["opportunity_to_customer"] == 0.0
        assert value["win_rate"] is None
        assert value["average_deal_size"] is None
        assert value["cycle_p90_seconds"] is None
        assert value["pipeline_velocity_per_day"] is None


def test_sales_one_rep_month_computed_by_hand(sales: dict[GroupKey, SalesMonth]) -> None:
    # awk -F, 'NR>1 && $2=="Wilburn Farren" && ($5=="Won"||$5=="Lost") && $7 ~ /^3\/[0-9]+\/2017$/' sales_pipeline.csv
    #   AT3MMVIS Won  11/12/2016 -> 3/7/2017   3045   (115 days)
    #   N4HFHDMW Won  11/29/2016 -> 3/10/2017  3012   (101 days)
    #   G8AO5FA2 Lost 12/18/2016 -> 3/27/2017
    #   TBZMXKH4 Won  1/15/2017  -> 3/29/2017  3833   (73 days)
    #   RK6UFTI8 Lost 3/21/2017  -> 3/26/2017
    # awk -F, 'NR>1 && $2=="Wilburn Farren" && $5!="Prospecting" && $6 ~ /^3\/[0-9]+\/2017$/' ... | wc -l -> 13
    # grep 'Wilburn Farren' sales_teams.csv -> East
    value = sales["rep", ("East", "Wilburn Farren"), "2017-03"]
    assert value["opportunities_created"] == 13
    assert (value["deals_won"], value["deals_lost"]) == (3, 2)
    assert value["revenue"] == Decimal(9890)
    assert value["win_rate"] == 0.6
    assert value["opportunity_to_customer"] == 3 / 13
    assert value["average_deal_size"] == Decimal("3296.666666666666666666666667")
    assert value["cycle_mean_seconds"] == 289 / 3 * DAY
    assert value["cycle_p50_seconds"] == 101 * DAY
    assert value["cycle_p90_seconds"] == pytest.approx(112.2 * DAY, rel=1e-15)  # 101 + 0.8 * (115 - 101)
    # 13 * (9890 / 3) * 0.6 / (289 / 3) = 77142 / 289
    assert value["pipeline_velocity_per_day"] == pytest.approx(77142 / 289, rel=1e-15)


# -- the real olist-marketing-funnel data set ------------------------------------------------------------------


def test_olist_totals_equal_a_second_route(folder: Path, olist: dict[GroupKey, OlistMonth]) -> None:
    mqls = read(folder / OLIST_DIR / "olist_marketing_qualified_leads_dataset.csv")
    deals = read(folder / OLIST_DIR / "olist_closed_deals_dataset.csv")
    assert (len(mqls), len(deals)) == (8000, 842)  # wc -l minus the header
    for kind in ("overall", "channel", "rep"):
        values = [value for (k, _, _), value in olist.items() if k == kind]
        assert sum(value["deals_won"] for value in values) == len(deals), kind
        if kind != "rep":
            assert sum(value["leads"] or 0 for value in values) == len(mqls), kind
            assert all(value["mqls"] == value["leads"] for value in values)
        else:
            assert all(value["leads"] is None and value["lead_to_customer"] is None for value in values)
    # cut -d, -f4 olist_closed_deals_dataset.csv | sort -u | wc -l -> 23 (with the header)
    assert len({key for kind, key, _ in olist if kind == "rep"}) == 22
    # grep -c ',unknown\r$' -> 1099, grep -c ',\r$' -> 60
    unknown = [value for (kind, key, _), value in olist.items() if kind == "channel" and key == ("unknown",)]
    assert sum(value["leads"] or 0 for value in unknown) == 1099 + 60
    channels = Counter(row["origin"] or "unknown" for row in mqls)
    for channel, leads in channels.items():
        found = [value for (kind, key, _), value in olist.items() if kind == "channel" and key == (channel,)]
        assert sum(value["leads"] or 0 for value in found) == leads, channel


@pytest.mark.parametrize(
    ("month", "leads", "won"),
    [
        # grep -cE '^[0-9a-f]+,1/[0-9]+/2018,' olist_marketing_qualified_leads_dataset.csv
        # grep -cE ',[0-9]{2}-01-2018 [0-9]{2}:[0-9]{2},' olist_closed_deals_dataset.csv
        ("2018-01", 1141, 73),
        ("2018-02", 1028, 113),
        ("2018-03", 1174, 147),
    ],
)
def test_olist_overall_months_read_off_with_grep(
    olist: dict[GroupKey, OlistMonth], month: str, leads: int, won: int
) -> None:
    assert olist["overall", (), month] == {
        "leads": leads,
        "mqls": leads,
        "deals_won": won,
        "lead_to_customer": won / leads,
    }


def test_olist_channel_and_rep_spot_values(olist: dict[GroupKey, OlistMonth]) -> None:
    # grep -cE $'^[0-9a-f]+,3/[0-9]+/2018,paid_search\r$' olist_marketing_qualified_leads_dataset.csv -> 262
    # awk -F, 'NR==FNR{sub(/\r$/,""); o[$1]=$3; next} FNR>1 && $5 ~ /-03-2018 / && o[$1]=="paid_search"' \
    #   olist_marketing_qualified_leads_dataset.csv olist_closed_deals_dataset.csv | wc -l -> 34
    assert olist["channel", ("paid_search",), "2018-03"] == {
        "leads": 262,
        "mqls": 262,
        "deals_won": 34,
        "lead_to_customer": 34 / 262,
    }
    # grep -cE $'^[0-9a-f]+,3/[0-9]+/2018,(unknown)?\r$' -> 195; the same awk join with "unknown" or "" -> 38
    assert olist["channel", ("unknown",), "2018-03"]["leads"] == 195
    assert olist["channel", ("unknown",), "2018-03"]["deals_won"] == 38
    # grep -E ',[0-9]{2}-03-2018 ' olist_closed_deals_dataset.csv | cut -d, -f4 | sort | uniq -c | sort -rn | head -1
    assert olist["rep", ("4ef15afb4b2723d8f3d81e51ec7afefe",), "2018-03"]["deals_won"] == 22
    # no MQL after May 2018 (first_contact_date ranges 6/14/2017 .. 5/31/2018), wins until November 2018
    assert olist["overall", (), "2018-06"] == {"leads": 0, "mqls": 0, "deals_won": 57, "lead_to_customer": None}
    assert max(month for _, _, month in olist) == "2018-11"
