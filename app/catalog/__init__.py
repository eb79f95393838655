"""Categories, products, images and SKUs, and the services that change them."""
