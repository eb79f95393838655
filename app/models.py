"""Imports every area's models so SQLAlchemy and Alembic see the whole schema."""

from app.accounts.models import ApiToken, CustomerToken, Staff, StaffSession, User  # noqa: F401
from app.accounts.traces import SignInTrace  # noqa: F401
from app.catalog.models import Category, Product, ProductImage, Sku  # noqa: F401
from app.cloud.models import (  # noqa: F401
    AgentProductRate,
    CloudSettings,
    MerchantLevel,
    MerchantOrder,
    MerchantSkuPrice,
    OrderingMerchant,
    RegionAgent,
)
from app.core.models import AuditLog, StatusChange  # noqa: F401
from app.coupons.models import CouponTemplate, CustomerCoupon  # noqa: F401
from app.discounts.models import (  # noqa: F401
    DiscountProductSetting,
    TimedDiscount,
    TimedDiscountPrice,
)
from app.distribution.funnel_models import FunnelClosedDay, FunnelDay  # noqa: F401
from app.distribution.models import (  # noqa: F401
    Binding,
    BindingEvent,
    CommissionRule,
    DistributionSettings,
    Distributor,
    DistributorPath,
    Grade,
    OrderAttribution,
    RefTouch,
    Withdrawal,
)
from app.incentives.models import GradeChange, IncentiveSettings, LeaderboardOptIn, Task  # noqa: F401
from app.ledger.models import (  # noqa: F401
    LedgerEntry,
    LedgerEntryChange,
    LedgerHold,
    LedgerSettledHistory,
)
from app.orders.models import (  # noqa: F401
    Address,
    CartItem,
    Order,
    OrderLine,
    PaymentTransaction,
    Refund,
    ShopSettings,
)
from app.posters.models import PosterTemplate  # noqa: F401
from app.reports.models import (  # noqa: F401
    ReportDailyDistributor,
    ReportDailyProduct,
    ReportDailyTotal,
    ReportDay,
)
from app.risk.models import RiskFlag, RiskSettings  # noqa: F401
from app.shop.models import CustomerService, RecentSearch, SearchTerm  # noqa: F401
from app.wechat.models import (  # noqa: F401
    DistributorQrcode,
    NotificationSetting,
    OutboundMessage,
    WechatFan,
    WechatMessageSeen,
)
